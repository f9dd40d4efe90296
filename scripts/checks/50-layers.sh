#!/usr/bin/env bash
# The one-way house (docs/architecture.md): imports in approval-core run from a higher layer to a
# lower one only, and no crate's modules import in a circle. The checker first proves on made-up
# crates that it catches each kind of violation, then checks the workspace and that
# docs/architecture.md holds the current map.
set -euo pipefail
cd "$(dirname "$0")/../.."
python3 scripts/layers.py --self-test
python3 scripts/layers.py --docs docs/architecture.md
