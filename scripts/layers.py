#!/usr/bin/env python3
"""The layers of the workspace, and a check that imports between modules run one way.

approval-core is cut into layers (LAYERS below, docs/architecture.md): a module may import its
own layer and the layers its layer may use, never a layer above, and no import may close a
circle. The other crates have no layer table, but their modules must not import in circles
either. Imports are read from `crate::` and `super::` paths (in `use` trees and inline); test
code (`#[cfg(test)]` items, files named tests.rs) is left out: tests may use any layer.

    scripts/layers.py            check, print the map of approval-core, exit 1 on a violation
    scripts/layers.py --markdown print the map as docs/architecture.md holds it
    scripts/layers.py --docs F   also fail when F does not hold the map printed by --markdown
    scripts/layers.py --self-test  the check on made-up crates, one per rule
"""

import os
import re
import sys

ROOT = os.path.normpath(os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
CORE = "crates/approval-core/src"
OTHER_CRATES = ["crates/approval-cli/src", "crates/pam-sim/src", "crates/ews/src", "crates/bench/src"]

# (layer, what it owns, its modules, the layers it may use besides its own). Bottom first.
LAYERS = [
    ("base", "process plumbing that knows nothing of CyberArk or mail: exit codes, the "
     "environment, safe display of untrusted text, TLS, HTTP retries, the loading machinery "
     "of the configuration (file, env overrides, errors naming file and key), owner-only file "
     "modes",
     ["exit", "env", "text", "tls", "http", "config", "perms"], []),
    ("secrets", "secret references (`env:`, `file:`, `vault:`) and the Vault/OpenBao client",
     ["secret"], ["base"]),
    ("data", "PVWA's request model as plain data, its display form, and who a user name "
     "names (the one \"same person\" rule)",
     ["pvwa::model", "pvwa::view", "person"], ["base"]),
    ("readers", "pure logic: read the forwarded mail, judge the sender, decide, write the "
     "reply text, the watcher's own settings; no I/O, no client",
     ["notice", "notice_check", "sender", "screen", "policy", "notify", "pipeline::config"], ["base", "data"]),
    ("clients", "one outside system each (PVWA, the mailbox backends, the directory, "
     "ticketing, Remote Access) and the local stores (journal, locks and audit, metrics); "
     "never the readers",
     ["pvwa", "mailbox", "directory", "ticketing", "remote_access", "journal", "runtime",
      "metrics"],
     ["base", "secrets", "data"]),
    ("top", "the aggregate configuration and error, and the operations that put the layers "
     "together: the watcher pipeline and the single-request tools",
     ["settings", "error", "approve", "check_sender", "pipeline", "site_check"],
     ["base", "secrets", "data", "readers", "clients"]),
]


def clean(src):
    """Comments, strings and char literals blanked out (newlines kept, so offsets keep lines)."""
    out = []
    i, n = 0, len(src)

    def blank(s):
        return "".join("\n" if c == "\n" else " " for c in s)

    while i < n:
        c = src[i]
        if src.startswith("//", i):
            j = src.find("\n", i)
            j = n if j < 0 else j
            out.append(blank(src[i:j]))
            i = j
        elif src.startswith("/*", i):
            depth, j = 1, i + 2
            while j < n and depth:
                if src.startswith("/*", j):
                    depth, j = depth + 1, j + 2
                elif src.startswith("*/", j):
                    depth, j = depth - 1, j + 2
                else:
                    j += 1
            out.append(blank(src[i:j]))
            i = j
        elif re.match(r'b?r#*"', src[i:i + 20]) and (i == 0 or not (src[i - 1].isalnum() or src[i - 1] == "_")):
            m = re.match(r'b?r(#*)"', src[i:])
            end = '"' + m.group(1)
            j = src.find(end, i + m.end())
            j = n if j < 0 else j + len(end)
            out.append(blank(src[i:j]))
            i = j
        elif c == '"' or (c == "b" and src.startswith('b"', i) and (i == 0 or not src[i - 1].isalnum())):
            j = i + (2 if c == "b" else 1)
            while j < n and src[j] != '"':
                j += 2 if src[j] == "\\" else 1
            out.append(blank(src[i:j + 1]))
            i = j + 1
        elif c == "'":
            m = re.match(r"'(\\.[^']*|[^\\'])'", src[i:])
            if m:
                out.append(blank(m.group(0)))
                i += m.end()
            else:  # a lifetime
                out.append(c)
                i += 1
        else:
            out.append(c)
            i += 1
    return "".join(out)


def strip_tests(code):
    """`#[cfg(test)]` items blanked out; returns the code and the names of test-only modules."""
    test_mods = set()
    out = code
    for m in reversed(list(re.finditer(r"#\[cfg\(test\)\]", code))):
        j = m.end()
        k = min([x for x in (code.find("{", j), code.find(";", j)) if x >= 0] or [len(code)])
        decl = re.match(r"\s*(?:pub(?:\([^)]*\))?\s+)?mod\s+(\w+)\s*;", code[j:k + 1])
        if decl:
            test_mods.add(decl.group(1))
            end = k + 1
        elif code[k:k + 1] == "{":
            depth, end = 0, k
            while end < len(code):
                if code[end] == "{":
                    depth += 1
                elif code[end] == "}":
                    depth -= 1
                    if depth == 0:
                        end += 1
                        break
                end += 1
        else:
            end = k + 1
        out = out[:m.start()] + "".join("\n" if ch == "\n" else " " for ch in out[m.start():end]) + out[end:]
    return out, test_mods


def use_paths(tree):
    """Expand a use tree (`a::{b, c::{d, e}}`) into paths (lists of segments)."""
    tree = re.sub(r"\s+as\s+[A-Za-z_][A-Za-z0-9_]*", "", tree)
    tree = re.sub(r"\s+", "", tree)

    def parse(s, i, prefix):
        paths = []
        cur = list(prefix)
        while i < len(s):
            m = re.match(r"[A-Za-z_][A-Za-z0-9_]*|\*", s[i:])
            if m:
                cur.append(m.group(0))
                i += m.end()
                if s.startswith("::", i):
                    i += 2
                    if s.startswith("{", i):
                        sub, i = parse_group(s, i + 1, cur)
                        paths.extend(sub)
                        cur = None
                    continue
                paths.append(cur)
                cur = None
                return paths, i
            return paths, i
        if cur and cur != list(prefix):
            paths.append(cur)
        return paths, i

    def parse_group(s, i, prefix):
        paths = []
        while i < len(s) and s[i] != "}":
            if s[i] == ",":
                i += 1
                continue
            sub, i = parse(s, i, prefix)
            paths.extend(sub)
        return paths, i + 1

    paths, _ = parse(tree, 0, [])
    return paths


def crate_imports(path, code, module):
    """(line, target module path) for every crate-relative import in a file's code."""
    found = []
    for m in re.finditer(r"\buse\s+([^;]*);", code):
        for p in use_paths(m.group(1)):
            found.append((code.count("\n", 0, m.start()) + 1, p))
    no_use = re.sub(r"\buse\s+[^;]*;", lambda m: re.sub(r"[^\n]", " ", m.group(0)), code)
    for m in re.finditer(r"\b(crate|super)((?:\s*::\s*[A-Za-z_][A-Za-z0-9_]*)+)", no_use):
        segs = [m.group(1)] + [s.strip() for s in m.group(2).split("::") if s.strip()]
        found.append((no_use.count("\n", 0, m.start()) + 1, segs))
    out = []
    for line, segs in found:
        if not segs:
            continue
        if segs[0] == "crate":
            target = segs[1:]
        elif segs[0] == "super":
            base = list(module)
            while segs and segs[0] == "super":
                base = base[:-1]
                segs = segs[1:]
            target = base + segs
        else:
            continue
        out.append((line, target))
    return out


def module_of(src_dir, file):
    rel = os.path.relpath(file, src_dir)[:-3].split(os.sep)
    if rel[-1] in ("mod", "lib", "main"):
        rel = rel[:-1]
    return rel


def read_crate(src_dir):
    """[(file, module path, [(line, target path)])] of the crate's library code."""
    files = []
    for d, _, names in os.walk(src_dir):
        for f in sorted(names):
            if f.endswith(".rs"):
                files.append(os.path.join(d, f))
    parsed, test_mods = [], set()
    for f in sorted(files):
        code, tm = strip_tests(clean(open(f, encoding="utf-8").read()))
        mod = module_of(src_dir, f)
        test_mods |= {tuple(mod + [t]) for t in tm}
        parsed.append((f, mod, code))
    out = []
    for f, mod, code in parsed:
        if os.path.basename(f) == "tests.rs" or any(tuple(mod[:k]) in test_mods for k in range(1, len(mod) + 1)):
            continue
        if "bin" in os.path.relpath(f, src_dir).split(os.sep)[:1] or os.path.basename(f) == "main.rs":
            continue
        out.append((f, mod, crate_imports(f, code, mod)))
    return out


def unit_of(path, units):
    """The longest unit (module path) that `path` lies in, or its first segment."""
    best = None
    for u in units:
        if tuple(path[:len(u)]) == u and (best is None or len(u) > len(best)):
            best = u
    return best


def tarjan(nodes, edges):
    index, low, stack, on, sccs, counter = {}, {}, [], set(), [], [0]
    sys.setrecursionlimit(10000)

    def visit(v):
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on.add(v)
        for w in sorted(edges.get(v, ())):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            sccs.append(sorted(comp))

    for v in sorted(nodes):
        if v not in index:
            visit(v)
    return [c for c in sccs if len(c) > 1]


def name(u):
    return "::".join(u)


def graph(src_dir, units):
    """Edges between units, with the (file, line) of each import."""
    files = read_crate(src_dir)
    top = {tuple(m[:1]) for _, m, _ in files if m}
    units = set(units) | top
    edges, where, unplaced = {}, {}, []
    for f, mod, imports in files:
        if not mod:
            continue
        src = unit_of(mod, units)
        for line, target in imports:
            dst = unit_of(target, units)
            if dst is None or dst == src:
                continue
            edges.setdefault(src, set()).add(dst)
            where.setdefault((src, dst), []).append((os.path.relpath(f, ROOT), line))
    return units, edges, where, unplaced


def check_core(src_dir=None, layers=None, label=CORE):
    src_dir = src_dir or os.path.join(ROOT, CORE)
    layers = layers or LAYERS
    layer_of, allowed, units = {}, {}, []
    for layer, _, mods, uses in layers:
        allowed[layer] = set(uses) | {layer}
        for m in mods:
            u = tuple(m.split("::"))
            layer_of[u] = layer
            units.append(u)
    all_units, edges, where, _ = graph(src_dir, units)
    problems = []
    for u in sorted(all_units):
        if u not in layer_of:
            problems.append(f"{label}: module `{name(u)}` is in no layer: add it to LAYERS in scripts/layers.py and to docs/architecture.md")
    for (src, dst), places in sorted(where.items()):
        ls, ld = layer_of.get(src), layer_of.get(dst)
        if ls and ld and ld not in allowed[ls]:
            for f, line in places:
                problems.append(f"{f}:{line}: `{name(src)}` ({ls}) imports `{name(dst)}` ({ld}): the {ls} layer may use {', '.join(sorted(allowed[ls]))}")
    for comp in tarjan(all_units, edges):
        cyc = [name(c) for c in comp]
        detail = "; ".join(f"{name(a)} -> {name(b)} ({where[(a, b)][0][0]}:{where[(a, b)][0][1]})"
                           for a in comp for b in comp if (a, b) in where)
        problems.append(f"{label}: an import circle between {', '.join(cyc)}: {detail}")
    return layer_of, edges, problems


def check_other(src, src_dir=None):
    src_dir = src_dir or os.path.join(ROOT, src)
    units, edges, where, _ = graph(src_dir, [])
    problems = []
    for comp in tarjan(units, edges):
        detail = "; ".join(f"{name(a)} -> {name(b)} ({where[(a, b)][0][0]}:{where[(a, b)][0][1]})"
                           for a in comp for b in comp if (a, b) in where)
        problems.append(f"{src}: an import circle between {', '.join(name(c) for c in comp)}: {detail}")
    return problems


def markdown(layer_of, edges):
    lines = ["| layer | modules | may use | owns |", "|---|---|---|---|"]
    for layer, owns, mods, uses in reversed(LAYERS):
        lines.append(f"| {layer} | {', '.join('`' + m + '`' for m in mods)} | {', '.join(uses) or '(itself only)'} | {owns} |")
    lines.append("")
    lines.append("What each module imports today (scripts/layers.py prints this):")
    lines.append("")
    lines.append("```")
    for layer, _, mods, _ in reversed(LAYERS):
        for m in mods:
            u = tuple(m.split("::"))
            deps = sorted(name(d) for d in edges.get(u, ()))
            lines.append(f"{layer:8} {m:18} -> {' '.join(deps) if deps else '(nothing)'}")
    lines.append("```")
    return "\n".join(lines)


STEPS = "crates/approval-core/src/pipeline/watcher"


def steps(steps_dir=None):
    """The watcher's steps (one file per journal state, all `impl Pipeline`): which file calls a
    method another file defines. Returns (edges, problems): a circle between steps is one."""
    d = steps_dir or os.path.join(ROOT, STEPS)
    srcs = {}
    for f in sorted(os.listdir(d)):
        if f.endswith(".rs"):
            srcs[f[:-3]] = strip_tests(clean(open(os.path.join(d, f), encoding="utf-8").read()))[0]
    owner = {}
    for unit, code in srcs.items():
        for m in re.finditer(r"^\s*(?:pub(?:\([^)]*\))?\s+)?(?:async\s+)?fn\s+(\w+)", code, re.M):
            owner.setdefault(m.group(1), unit)
    edges = {}
    for unit, code in srcs.items():
        for m in re.finditer(r"\bself\.(\w+)\s*\(", code):
            o = owner.get(m.group(1))
            if o and o != unit:
                edges.setdefault(unit, set()).add(o)
    problems = [
        f"the watcher's steps call each other in a circle: {', '.join(c)} ({STEPS})"
        for c in tarjan(set(srcs), edges)
    ]
    return srcs.keys(), edges, problems


def steps_markdown(units, edges):
    lines = ["```"]
    for u in sorted(units, key=lambda u: (u != "mod", u)):
        deps = sorted(edges.get(u, ()))
        lines.append(f"pipeline::watcher::{u:9} -> {' '.join(deps) if deps else '(nothing)'}")
    lines.append("```")
    return "\n".join(lines)


def self_test():
    """The check on a made-up crate: each rule must catch its violation, and test code and
    allowed imports must pass."""
    import tempfile

    def crate(files):
        d = tempfile.mkdtemp()
        for rel, text in files.items():
            os.makedirs(os.path.dirname(os.path.join(d, rel)), exist_ok=True)
            with open(os.path.join(d, rel), "w", encoding="utf-8") as f:
                f.write(text)
        return d

    layers = [("low", "", ["a", "b::inner"], []), ("high", "", ["b", "c"], ["low"])]
    lib = "pub mod a;\npub mod b;\npub mod c;\n"
    good = crate({
        "lib.rs": lib,
        "a.rs": "//! uses crate::c in a comment only\nconst S: &str = \"crate::c::X\";\n"
                "#[cfg(test)]\nmod tests {\n    use crate::c::Y;\n    fn f() { let _ = '{'; }\n}\n",
        "b/mod.rs": "pub mod inner;\nuse crate::{a::{self, X as Y}, c};\n",
        "b/inner.rs": "use super::super::a::Z;\n",
        "c.rs": "fn f() { crate::a::g(); }\n",
    })
    _, edges, problems = check_core(good, layers, "good")
    cases = [
        (problems == [], f"allowed imports pass: {problems}"),
        (edges.get(("b",)) == {("a",), ("c",)}, f"grouped use trees are read: {edges}"),
        (edges.get(("b", "inner")) == {("a",)}, f"super:: is resolved: {edges}"),
    ]
    upward = crate({"lib.rs": lib, "a.rs": "use crate::c::X;\n", "b/mod.rs": "", "c.rs": ""})
    _, _, problems = check_core(upward, layers, "upward")
    cases.append((any("`a` (low) imports `c` (high)" in p for p in problems), f"upward import: {problems}"))
    up_super = crate({"lib.rs": lib, "a.rs": "", "b/mod.rs": "pub mod inner;\n", "b/inner.rs": "use super::Thing;\n", "c.rs": ""})
    _, _, problems = check_core(up_super, layers, "super")
    cases.append((any("`b::inner` (low) imports `b` (high)" in p for p in problems), f"upward through super: {problems}"))
    circle = crate({"lib.rs": lib, "a.rs": "", "b/mod.rs": "fn f() { crate::c::g() }\n", "c.rs": "use crate::b;\n"})
    _, _, problems = check_core(circle, layers, "circle")
    cases.append((any("import circle between b, c" in p for p in problems), f"circle in one layer: {problems}"))
    stray = crate({"lib.rs": lib + "pub mod d;\n", "a.rs": "", "b/mod.rs": "", "c.rs": "", "d.rs": ""})
    _, _, problems = check_core(stray, layers, "stray")
    cases.append((any("`d` is in no layer" in p for p in problems), f"a module outside the table: {problems}"))
    step_circle = crate({"mod.rs": "impl P {\n    fn process(&self) { self.decide(); }\n}\n",
                         "decide.rs": "impl P {\n    pub(super) fn decide(&self) { self.confirm() }\n}\n",
                         "confirm.rs": "impl P {\n    pub(super) async fn confirm(&self) { self.decide(); }\n}\n"
                                       "#[cfg(test)]\nmod tests {\n    fn t(p: &P) { self.process(); }\n}\n"})
    _, edges, problems = steps(step_circle)
    cases.append((any("circle: confirm, decide" in p for p in problems), f"a circle between steps: {problems}"))
    cases.append((edges.get("mod") == {"decide"} and "mod" not in edges.get("confirm", set()),
                  f"step calls are read, test code is not: {edges}"))
    other = crate({"lib.rs": "mod x;\nmod y;\n", "x.rs": "use crate::y::A;\n", "y.rs": "use crate::x::B;\n"})
    problems = check_other("other", other)
    cases.append((any("import circle between x, y" in p for p in problems), f"circle in another crate: {problems}"))
    failed = [msg for ok, msg in cases if not ok]
    for msg in failed:
        print("self-test failed: " + msg, file=sys.stderr)
    print(f"self-test: {len(cases) - len(failed)} of {len(cases)} cases pass")
    return 1 if failed else 0


def main(argv):
    if "--self-test" in argv:
        return self_test()
    layer_of, edges, problems = check_core()
    for other in OTHER_CRATES:
        if os.path.isdir(os.path.join(ROOT, other)):
            problems.extend(check_other(other))
    md = markdown(layer_of, edges)
    step_units, step_edges, step_problems = steps()
    problems.extend(step_problems)
    smd = steps_markdown(step_units, step_edges)
    if "--markdown" in argv:
        print(md)
        return 0
    if "--steps-markdown" in argv:
        print(smd)
        return 0
    print(md)
    print()
    print(smd)
    if "--docs" in argv:
        doc = argv[argv.index("--docs") + 1]
        text = open(os.path.join(ROOT, doc), encoding="utf-8").read()
        if md not in text:
            problems.append(f"{doc} does not hold the current layer map: paste the output of `scripts/layers.py --markdown` into it")
        if smd not in text:
            problems.append(f"{doc} does not hold the current map of the watcher's steps: paste the output of `scripts/layers.py --steps-markdown` into it")
    if problems:
        print("\nlayer check failed:", file=sys.stderr)
        for p in problems:
            print("  " + p, file=sys.stderr)
        return 1
    print("\nlayers: every import runs one way")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
