#!/usr/bin/env bash
# Installs Hive on this machine: the `hive` binary (a release build),
# shell completion, the systemd units of the API and the agent, example
# settings, and the operations guide.
#
#   scripts/install.sh                      # into /usr/local, units in /etc/systemd/system, settings in /etc/hive
#   scripts/install.sh --prefix /opt/hive   # everything under /opt/hive (units in lib/systemd/system, settings in etc/hive)
#   scripts/install.sh --binary .build/debug/hive --prefix /tmp/h   # an existing build instead of building
#
# Settings already in place are kept. Nothing is started: see
# docs/operations.md for the steps after this one.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)

prefix=/usr/local
binary=""
unit_dir=""
config_dir=""
while (($#)); do
    case $1 in
        --prefix) prefix=${2:?--prefix needs a directory}; shift 2 ;;
        --binary) binary=${2:?--binary needs a path}; shift 2 ;;
        --unit-dir) unit_dir=${2:?--unit-dir needs a directory}; shift 2 ;;
        --config-dir) config_dir=${2:?--config-dir needs a directory}; shift 2 ;;
        -h | --help) sed -n '2,12p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
        *) echo "install.sh: unknown argument '$1' (expected --prefix, --binary, --unit-dir or --config-dir)" >&2; exit 2 ;;
    esac
done
prefix=$(mkdir -p "$prefix" && cd "$prefix" && pwd)
# The system's places for a /usr/local install; under the prefix otherwise.
if [[ $prefix == /usr/local || $prefix == /usr ]]; then
    unit_dir=${unit_dir:-/etc/systemd/system}
    config_dir=${config_dir:-/etc/hive}
else
    unit_dir=${unit_dir:-$prefix/lib/systemd/system}
    config_dir=${config_dir:-$prefix/etc/hive}
fi

if [[ -z $binary ]]; then
    echo "building hive (release): swift build -c release --product hive --scratch-path .build-release"
    (cd "$root" && swift build -c release --product hive --scratch-path .build-release >&2)
    binary="$root/.build-release/release/hive"
fi
[[ -x $binary ]] || { echo "install.sh: $binary is not an executable" >&2; exit 1; }

bin_dir=$prefix/bin
doc_dir=$prefix/share/doc/hive
install -d -m 0755 "$bin_dir" "$doc_dir" "$unit_dir" \
    "$prefix/share/bash-completion/completions" "$prefix/share/zsh/site-functions" "$prefix/share/fish/vendor_completions.d"
install -m 0755 "$binary" "$bin_dir/hive"
"$bin_dir/hive" --generate-completion-script bash >"$prefix/share/bash-completion/completions/hive"
"$bin_dir/hive" --generate-completion-script zsh >"$prefix/share/zsh/site-functions/_hive"
"$bin_dir/hive" --generate-completion-script fish >"$prefix/share/fish/vendor_completions.d/hive.fish"
install -m 0644 "$root/docs/operations.md" "$doc_dir/operations.md"

for unit in hive-api.service hive-agent.service; do
    sed -e "s#@BINDIR@#$bin_dir#g" -e "s#@CONFDIR@#$config_dir#g" -e "s#@DOCDIR@#$doc_dir#g" \
        "$root/packaging/systemd/$unit" >"$unit_dir/$unit.tmp"
    chmod 0644 "$unit_dir/$unit.tmp"
    mv "$unit_dir/$unit.tmp" "$unit_dir/$unit"
done

# Settings: examples the first time, never over the operator's.
install -d -m 0755 "$config_dir"
for file in api.env agent.env; do
    [[ -e $config_dir/$file ]] || install -m 0644 "$root/packaging/etc/$file" "$config_dir/$file"
done

echo "installed $("$bin_dir/hive" --version) as $bin_dir/hive"
echo "  completion: $prefix/share/{bash-completion/completions/hive,zsh/site-functions/_hive,fish/vendor_completions.d/hive.fish}"
echo "  units: $unit_dir/hive-api.service, $unit_dir/hive-agent.service"
echo "  settings: $config_dir/api.env, $config_dir/agent.env (edit them; tokens go in $config_dir/tokens, chmod 600)"
echo "next: docs/operations.md, \"Installing on machines\" ($doc_dir/operations.md)"
