#!/usr/bin/env python3
"""Checks that Cargo.lock keeps silverback buildable on its MSRV.

Every package that `cargo check -p silverback --all-features --all-targets`
builds on Linux (its normal, build and dev dependencies, then theirs but for
their dev-dependencies) must declare a `rust-version` no higher than
silverback's own. A `cargo update` run with a newer toolchain can pull in
such a package unseen; rerun `cargo +1.85.0 update -p NAME` to go back.
"""
import json
import subprocess
import sys


def version_tuple(text):
    """`1.85` and `1.85.0` alike, as (major, minor, patch)."""
    parts = [int(part) for part in text.split(".")]
    return tuple(parts + [0] * (3 - len(parts)))


def main():
    out = subprocess.run(
        ["cargo", "metadata", "--format-version", "1", "--all-features", "--locked",
         "--filter-platform", "x86_64-unknown-linux-gnu"],
        check=True, capture_output=True, text=True).stdout
    meta = json.loads(out)
    packages = {p["id"]: p for p in meta["packages"]}
    nodes = {n["id"]: n for n in meta["resolve"]["nodes"]}
    root = next(p for p in meta["packages"] if p["name"] == "silverback" and p["source"] is None)
    msrv = version_tuple(root["rust_version"])
    seen, stack = {root["id"]}, [(root["id"], True)]
    while stack:
        node_id, is_root = stack.pop()
        for dep in nodes[node_id]["deps"]:
            kinds = {k["kind"] for k in dep["dep_kinds"]}
            if not is_root and kinds <= {"dev"}:
                continue
            if dep["pkg"] not in seen:
                seen.add(dep["pkg"])
                stack.append((dep["pkg"], False))
    too_new = []
    for pkg_id in seen - {root["id"]}:
        pkg = packages[pkg_id]
        wanted = pkg.get("rust_version")
        if wanted and version_tuple(wanted) > msrv:
            too_new.append(f"{pkg['name']} {pkg['version']} requires Rust {wanted}")
    if too_new:
        print(f"Cargo.lock breaks silverback's MSRV {root['rust_version']}:", file=sys.stderr)
        for line in sorted(too_new):
            print(f"  {line}", file=sys.stderr)
        sys.exit(1)
    print(f"Cargo.lock: {len(seen) - 1} packages silverback builds fit Rust {root['rust_version']}")


if __name__ == "__main__":
    main()
