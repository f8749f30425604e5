#!/bin/sh
# Installs the bedrock-cost-mcp binary from a GitHub release, after checking its SHA-256.
#
#   curl -fsSL https://raw.githubusercontent.com/OWNER/bedrock-cost-mcp/main/install.sh | sh
#   sh install.sh                    # from a clone
#
# Environment (all optional):
#   BEDROCK_COST_MCP_VERSION      release to install (default below), e.g. 0.1.0
#   BEDROCK_COST_MCP_INSTALL_DIR  where to put the binary (default: $HOME/.local/bin)
#   BEDROCK_COST_MCP_RELEASE_URL  where releases live: <base>/v<version>/<archive>. An https://
#                                 or http:// URL, a file:// URL, or a local folder path
#                                 (default: https://github.com/OWNER/bedrock-cost-mcp/releases/download)
#   BEDROCK_COST_MCP_TARGET       Rust target triple to install instead of the detected one
#
# Supported: Linux x86_64 and aarch64 (static musl builds) and macOS arm64 and x86_64. On Windows,
# download bedrock-cost-mcp-<version>-x86_64-pc-windows-msvc.zip from the release page.
# Exit status: 0 installed, 1 any failure (nothing is installed when the checksum does not match).
set -eu

REPO="OWNER/bedrock-cost-mcp"
DEFAULT_VERSION="0.1.0"
BIN="bedrock-cost-mcp"

VERSION="${BEDROCK_COST_MCP_VERSION:-$DEFAULT_VERSION}"
VERSION="${VERSION#v}"
INSTALL_DIR="${BEDROCK_COST_MCP_INSTALL_DIR:-${HOME:?HOME is not set; set BEDROCK_COST_MCP_INSTALL_DIR}/.local/bin}"
RELEASE_URL="${BEDROCK_COST_MCP_RELEASE_URL:-https://github.com/$REPO/releases/download}"
RELEASE_URL="${RELEASE_URL%/}"

say() { printf '%s\n' "install.sh: $*" >&2; }
die() {
    say "error: $*"
    exit 1
}

detect_target() {
    os="$(uname -s)"
    arch="$(uname -m)"
    case "$arch" in
        x86_64 | amd64) arch=x86_64 ;;
        aarch64 | arm64) arch=aarch64 ;;
        *) die "unsupported CPU architecture: $arch (builds exist for x86_64 and aarch64)" ;;
    esac
    case "$os" in
        Linux) printf '%s\n' "$arch-unknown-linux-musl" ;;
        Darwin)
            # An x86_64 shell under Rosetta 2 on Apple silicon: install the native build.
            if [ "$arch" = x86_64 ] && [ "$(sysctl -n sysctl.proc_translated 2>/dev/null || echo 0)" = 1 ]; then
                arch=aarch64
            fi
            printf '%s\n' "$arch-apple-darwin"
            ;;
        MINGW* | MSYS* | CYGWIN* | Windows_NT)
            die "on Windows, download $BIN-$VERSION-x86_64-pc-windows-msvc.zip from https://github.com/$REPO/releases"
            ;;
        *) die "unsupported operating system: $os (builds exist for Linux and macOS)" ;;
    esac
}

# fetch SOURCE DEST: SOURCE is a URL (https, http, file) or a local path.
fetch() {
    case "$1" in
        http://* | https://*)
            if command -v curl >/dev/null 2>&1; then
                curl -fsSL --retry 3 -o "$2" "$1" || return 1
            elif command -v wget >/dev/null 2>&1; then
                wget -q -O "$2" "$1" || return 1
            else
                die "neither curl nor wget is installed"
            fi
            ;;
        file://*) cp "${1#file://}" "$2" 2>/dev/null || return 1 ;;
        *) cp "$1" "$2" 2>/dev/null || return 1 ;;
    esac
}

sha256_of() {
    if command -v sha256sum >/dev/null 2>&1; then
        sha256sum "$1" | cut -d' ' -f1
    elif command -v shasum >/dev/null 2>&1; then
        shasum -a 256 "$1" | cut -d' ' -f1
    elif command -v openssl >/dev/null 2>&1; then
        openssl dgst -sha256 -r "$1" | cut -d' ' -f1
    else
        die "no SHA-256 tool found (sha256sum, shasum or openssl) to check the download"
    fi
}

TARGET="${BEDROCK_COST_MCP_TARGET:-$(detect_target)}"
ARCHIVE="$BIN-$VERSION-$TARGET.tar.gz"
SOURCE="$RELEASE_URL/v$VERSION/$ARCHIVE"

command -v tar >/dev/null 2>&1 || die "tar is not installed"
TMP="$(mktemp -d 2>/dev/null || mktemp -d -t bedrock-cost-mcp)"
trap 'rm -rf "$TMP"' EXIT
trap 'exit 1' HUP INT TERM

say "downloading $SOURCE"
fetch "$SOURCE" "$TMP/$ARCHIVE" || die "could not download $SOURCE"
fetch "$SOURCE.sha256" "$TMP/$ARCHIVE.sha256" || die "could not download $SOURCE.sha256"

# The .sha256 file is "<hex>  <archive>" (sha256sum's format); only the hash is read.
expected="$(cut -d' ' -f1 <"$TMP/$ARCHIVE.sha256" | head -n 1 | tr 'A-F' 'a-f')"
actual="$(sha256_of "$TMP/$ARCHIVE")"
case "$expected" in
    *[!0-9a-f]* | "") die "$ARCHIVE.sha256 does not hold a SHA-256 hash" ;;
esac
[ "${#expected}" -eq 64 ] || die "$ARCHIVE.sha256 does not hold a SHA-256 hash"
if [ "$expected" != "$actual" ]; then
    die "checksum mismatch for $ARCHIVE: expected $expected, got $actual; nothing was installed"
fi
say "checksum ok ($actual)"

mkdir "$TMP/unpacked"
tar -xzf "$TMP/$ARCHIVE" -C "$TMP/unpacked" || die "could not unpack $ARCHIVE"
[ -f "$TMP/unpacked/$BIN" ] || die "$ARCHIVE has no $BIN at its root"

mkdir -p "$INSTALL_DIR" || die "could not create $INSTALL_DIR"
# Copy next to the destination, then rename: a running copy is never overwritten in place.
cp "$TMP/unpacked/$BIN" "$INSTALL_DIR/.$BIN.new.$$" || die "could not write to $INSTALL_DIR"
chmod 755 "$INSTALL_DIR/.$BIN.new.$$"
mv -f "$INSTALL_DIR/.$BIN.new.$$" "$INSTALL_DIR/$BIN" || {
    rm -f "$INSTALL_DIR/.$BIN.new.$$"
    die "could not install into $INSTALL_DIR"
}
if [ "$(uname -s)" = Darwin ]; then
    xattr -d com.apple.quarantine "$INSTALL_DIR/$BIN" 2>/dev/null || true
fi

say "installed $BIN $VERSION ($TARGET) to $INSTALL_DIR/$BIN"
case ":${PATH:-}:" in
    *":$INSTALL_DIR:"*) say "$INSTALL_DIR is on your PATH; run: $BIN --version" ;;
    *)
        say "$INSTALL_DIR is not on your PATH; add it, e.g. to ~/.profile:"
        say "  export PATH=\"$INSTALL_DIR:\$PATH\""
        ;;
esac
