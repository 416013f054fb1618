"""Regenerate the committed protobuf modules from proto/ (run after editing a .proto).

    python scripts/gen_protos.py            # writes vnfha/**/*_pb2.py(i)
    python scripts/gen_protos.py --check    # exit 1 if the committed files differ

Uses grpcio-tools, pinned in pyproject's dev extra: the generator's version decides the
oldest protobuf runtime that can load the result, so do not upgrade it casually.
"""

from __future__ import annotations

import argparse
import filecmp
import shutil
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PROTO_ROOT = ROOT / "proto"


def generate(out_dir: Path) -> list[Path]:
    """Compile every .proto under proto/ into out_dir; returns the generated files."""
    from grpc_tools import protoc  # noqa: PLC0415 - a dev dependency, needed only here

    protos = sorted(str(p.relative_to(PROTO_ROOT)) for p in PROTO_ROOT.rglob("*.proto"))
    include = str(Path(protoc.__file__).parent / "_proto")
    args = [
        "protoc",
        f"-I{PROTO_ROOT}",
        f"-I{include}",
        f"--python_out={out_dir}",
        f"--pyi_out={out_dir}",
        *protos,
    ]
    if protoc.main(args) != 0:
        raise SystemExit(f"protoc failed: {' '.join(args)}")
    return sorted(p for p in out_dir.rglob("*_pb2.py*"))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="compare instead of writing")
    opts = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp)
        differ = []
        for made in generate(out):
            rel = made.relative_to(out)
            target = ROOT / rel
            if opts.check:
                if not target.exists() or not filecmp.cmp(made, target, shallow=False):
                    differ.append(str(rel))
            else:
                target.parent.mkdir(parents=True, exist_ok=True)
                shutil.copyfile(made, target)
                print(f"wrote {rel}")
        if differ:
            print("out of date (run scripts/gen_protos.py):", *differ, sep="\n  ")
            return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
