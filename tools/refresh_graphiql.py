"""Refresh the vendored GraphiQL files from the npm registry: `make graphiql-assets`.

GraphiQL is served whole by this server (SSC and SECAS networks are often closed to the internet),
so its scripts live in `server/graphiql_assets/vendor/`. This script installs exactly what
`server/graphiql_assets/package-lock.json` pins (`npm ci` checks every tarball against the lock
file's integrity hash), copies the browser builds into `vendor/`, gathers the licences of every
package they bundle into one file, and writes `manifest.json` with each file's SHA-384, which the
test suite checks the committed files against. To move to newer versions, edit `package.json`,
run `npm install --package-lock-only` in that folder, then this script, and commit all of it.
"""

from __future__ import annotations

import base64
import hashlib
import json
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

ASSETS = Path(__file__).resolve().parent.parent / "server" / "graphiql_assets"
VENDOR = ASSETS / "vendor"

# What the page loads, in load order: the served name and where npm puts it.
FILES = {
    "react.production.min.js": "react/umd/react.production.min.js",
    "react-dom.production.min.js": "react-dom/umd/react-dom.production.min.js",
    "graphql-ws.min.js": "graphql-ws/umd/graphql-ws.min.js",
    "graphiql.min.js": "graphiql/graphiql.min.js",
    "graphiql.min.css": "graphiql/graphiql.min.css",
}
LICENCE_NAMES = ("LICENSE", "LICENSE.md", "LICENSE.txt", "LICENCE", "license", "LICENSE-MIT")


def sha384(data: bytes) -> str:
    return "sha384-" + base64.b64encode(hashlib.sha384(data).digest()).decode()


def install(into: Path) -> Path:
    for name in ("package.json", "package-lock.json"):
        shutil.copy(ASSETS / name, into / name)
    subprocess.run(
        ["npm", "ci", "--ignore-scripts", "--no-audit", "--no-fund", "--omit=dev"],  # noqa: S607
        cwd=into,
        check=True,
    )
    return into / "node_modules"


def licences(modules: Path) -> str:
    """Every installed package's licence text, as the bundles carry code from all of them."""
    parts = []
    for manifest in sorted(modules.glob("**/package.json")):
        package = manifest.parent
        if package.parent.name != "node_modules" and package.parent.parent.name != "node_modules":
            continue  # a package.json inside a package, not a package of its own
        meta = json.loads(manifest.read_text(encoding="utf-8"))
        if "name" not in meta or "version" not in meta:
            continue
        texts = [package / n for n in LICENCE_NAMES if (package / n).is_file()]
        body = texts[0].read_text(encoding="utf-8", errors="replace").strip() if texts else ""
        header = f"{meta['name']}@{meta['version']} ({meta.get('license', 'see package')})"
        parts.append(f"{'=' * 78}\n{header}\n{'=' * 78}\n{body or 'No licence file shipped.'}\n")
    return "\n".join(parts)


def main() -> int:
    with tempfile.TemporaryDirectory() as tmp:
        modules = install(Path(tmp))
        lock = json.loads((ASSETS / "package-lock.json").read_text(encoding="utf-8"))
        if VENDOR.exists():
            shutil.rmtree(VENDOR)
        VENDOR.mkdir(parents=True)
        manifest = {}
        for served, source in FILES.items():
            data = (modules / source).read_bytes()
            (VENDOR / served).write_bytes(data)
            package = source.split("/umd/")[0].split("/")[0]
            manifest[served] = {
                "package": package,
                "version": lock["packages"][f"node_modules/{package}"]["version"],
                "path": source,
                "integrity": sha384(data),
            }
        (VENDOR / "THIRD-PARTY-LICENSES.txt").write_text(licences(modules), encoding="utf-8")
    (VENDOR / "manifest.json").write_text(json.dumps(manifest, indent=2) + "\n", encoding="utf-8")
    print(f"vendored {len(manifest)} files into {VENDOR}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
