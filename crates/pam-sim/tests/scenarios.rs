//! Shipped scenarios parse and load; bad scenarios are refused with the reason.

use std::path::Path;

#[test]
fn shipped_scenarios_load() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples");
    let mut n = 0;
    for sub in ["demo", "bench"] {
        let Ok(rd) = std::fs::read_dir(dir.join(sub)) else {
            continue;
        };
        for e in rd.flatten() {
            let p = e.path();
            if p.file_name()
                .and_then(|f| f.to_str())
                .is_some_and(|f| f.contains("scenario") && f.ends_with(".toml"))
            {
                let s = pam_sim::Scenario::load(&p).expect("scenario parses");
                pam_sim::server::SimState::new(&s).expect("scenario loads");
                n += 1;
            }
        }
    }
    assert!(n >= 1, "no scenario found");
}

#[test]
fn a_request_on_an_unknown_safe_is_refused() {
    let s = pam_sim::Scenario::from_toml(
        "[[pvwa.requests]]\nnumber = 1\nsafe = \"Nope\"\nrequester = \"a\"\n",
    )
    .expect("parses");
    let e = pam_sim::server::SimState::new(&s).err().expect("refused");
    assert!(e.to_string().contains("safe Nope is not defined"), "{e}");
    assert!(pam_sim::Scenario::from_toml("[pvwa]\nbogus = 1\n").is_err());
}
