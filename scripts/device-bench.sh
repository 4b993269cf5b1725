#!/usr/bin/env bash
# Benchmarks a carried release binary of detbal on a machine with a real GPU and no Rust
# toolchain, and writes everything it measured into one JSON file.
#
# What it runs, each on `--device gpu` and `--device cpu` (bench's `--device all`):
#   1. `detbal bench --suite kernel`: edge_action, fit_iteration and reciprocal_triangles (hub
#      graph and uniform graph) at 1e4, 1e5, 1e6 and 1e7 edges, with the device work per call
#      (read-backs, dispatches, bytes per edge; fit_iteration per Newton step and per CG
#      iteration) from the GPU counters;
#   2. `detbal bench --suite stage` at 1e6 and 1e7 rows (llm-like logs: load, fit, pairs, cycles);
#   3. `detbal analyze` on a hard log made by `detbal simulate`: the giant-component mode when
#      this binary's `simulate --help` lists one, else llm-like; 1e7 rows, resampling as default
#      except `--bootstrap 0`; wall time and report.json's timings, device, fit and graph.
# `--quick` shrinks every size (kernel 1e3 and 1e4 edges, stage 1e4 rows, the log 2e4 rows, one
# run each) for a smoke test on any machine, lavapipe included.
#
# Preparing a device run from a development checkout (see the device tool's README): a stripped
# binary in an ignored folder, and the Vulkan loader as .debs when the machine lacks it:
#   mkdir -p .device && strip -o .device/detbal target/release/detbal
#   (the loader: .gl/*.deb, unpacked here when `ldconfig -p` shows no libvulkan)
#   bash scripts/device-bench.sh --bin .device/detbal --out "$OUT/device-bench.json"
#
# Usage: scripts/device-bench.sh [--quick] [--bin PATH] [--out FILE] [--gl DIR]
# Needs: bash, coreutils, python3 (to assemble the JSON). Exit status: 0 when every step ran;
# a failed step is recorded in the JSON with its exit status and the script goes on, then exits 1.
set -uo pipefail
cd "$(dirname "$0")/.."

quick=0
bin=""
out="${OUT:-.}/device-bench.json"
gl=".gl"
while [ $# -gt 0 ]; do
    case "$1" in
        --quick) quick=1 ;;
        --bin) bin="$2"; shift ;;
        --out) out="$2"; shift ;;
        --gl) gl="$2"; shift ;;
        -h|--help) sed -n '2,25p' "$0"; exit 0 ;;
        *) echo "device-bench: unknown argument $1 (see --help)" >&2; exit 2 ;;
    esac
    shift
done
if [ -z "$bin" ]; then
    for candidate in .device/detbal target/release/detbal; do
        [ -x "$candidate" ] && bin="$candidate" && break
    done
fi
[ -x "$bin" ] || { echo "device-bench: no detbal binary (give --bin PATH)" >&2; exit 2; }
command -v python3 >/dev/null || { echo "device-bench: python3 is needed" >&2; exit 2; }

# The Vulkan loader: unpack the carried .debs when the system has none.
if ! ldconfig -p 2>/dev/null | grep -q libvulkan && ls "$gl"/*.deb >/dev/null 2>&1; then
    for f in "$gl"/*.deb; do dpkg -x "$f" /; done
    ldconfig
fi
nvidia_icd=/usr/local/nvidia/share/vulkan/icd.d/nvidia_icd.json
if [ -z "${VK_DRIVER_FILES:-}" ] && [ -f "$nvidia_icd" ] \
    && ! ls /usr/share/vulkan/icd.d/nvidia* /etc/vulkan/icd.d/nvidia* >/dev/null 2>&1; then
    export VK_DRIVER_FILES="$nvidia_icd"
    export __EGL_VENDOR_LIBRARY_FILENAMES=/usr/local/nvidia/share/glvnd/egl_vendor.d/10_nvidia.json
fi
export XDG_RUNTIME_DIR="${XDG_RUNTIME_DIR:-/tmp}"

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
steps="$work/steps.tsv"
: >"$steps"
started=$(date +%s.%N)

# Runs one step: name, then the command; records its exit status, start and end, keeps its
# stdout and stderr in $work/NAME.out and .err.
step() {
    local name="$1"
    shift
    echo "device-bench: $name: $*" >&2
    local t0 rc
    t0=$(date +%s.%N)
    "$@" >"$work/$name.out" 2>"$work/$name.err"
    rc=$?
    printf '%s\t%s\t%s\t%s\n' "$name" "$rc" "$t0" "$(date +%s.%N)" >>"$steps"
    [ "$rc" -eq 0 ] || { echo "device-bench: $name failed ($rc):" >&2; tail -3 "$work/$name.err" >&2; }
}

if [ "$quick" -eq 1 ]; then
    sizes=1e3,1e4; rows=1e4; log_rows=20000; repeat=1
else
    sizes=1e4,1e5,1e6,1e7; rows=1e6,1e7; log_rows=10000000; repeat=5
fi
# The hard log's mode: one whose help mentions a giant component, else llm-like.
mode=$("$bin" simulate --help 2>/dev/null | awk '
    /^ *-(-|[a-zA-Z],)/ { name = "" }
    match($0, /^ *- [a-z0-9-]+:/) { name = substr($0, RSTART, RLENGTH); sub(/^ *- /, "", name); sub(/:$/, "", name) }
    tolower($0) ~ /giant/ && name != "" { print name; exit }')
mode=${mode:-llm-like}

step kernel "$bin" bench --suite kernel --device all --sizes "$sizes" --repeat "$repeat" \
    --json "$work/kernel.json"
step stage "$bin" bench --suite stage --device all --rows "$rows" --repeat "$repeat" \
    --json "$work/stage.json"
step simulate "$bin" simulate --mode "$mode" --rows "$log_rows" --seed 1 \
    -o "$work/hard.parquet"
for device in gpu cpu; do
    step "analyze-$device" "$bin" analyze "$work/hard.parquet" --device "$device" \
        --bootstrap 0 --quiet -o "$work/out-$device"
done

nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader \
    >"$work/nvidia-smi.txt" 2>/dev/null || true
mkdir -p "$(dirname "$out")"
python3 - "$work" "$out" "$bin" "$mode" "$log_rows" "$quick" "$started" <<'EOF'
import json, os, subprocess, sys, time
work, out, binary, mode, log_rows, quick, started = sys.argv[1:]

def load(path):
    try:
        with open(path) as f:
            return json.load(f)
    except (OSError, ValueError):
        return None

def text(path):
    try:
        with open(path) as f:
            return f.read().strip()
    except OSError:
        return ""

steps = {}
for line in text(os.path.join(work, "steps.tsv")).splitlines():
    name, rc, t0, t1 = line.split("\t")
    steps[name] = {"exit": int(rc), "wall_s": float(t1) - float(t0)}
    if rc != "0":
        steps[name]["stderr_tail"] = text(os.path.join(work, name + ".err"))[-2000:]

rows = (load(os.path.join(work, "kernel.json")) or []) + (load(os.path.join(work, "stage.json")) or [])
gpu_rows = [r for r in rows if r.get("backend") == "gpu"]
analyses = {}
for device in ("gpu", "cpu"):
    report = load(os.path.join(work, "out-" + device, "report.json")) or {}
    fit = {k: v for k, v in report.get("fit", {}).items() if not isinstance(v, (list, dict))}
    analyses[device] = dict(steps.get("analyze-" + device, {}), timings=report.get("timings"),
                            device=report.get("device"), fit=fit, graph=report.get("graph"),
                            triangles=report.get("cycles", {}).get("triangles"))
result = {
    "schema": "detbal-device-bench/1",
    "quick": quick == "1",
    "host": os.uname().nodename,
    "detbal": subprocess.run([binary, "--version"], capture_output=True, text=True).stdout.strip(),
    "adapter": gpu_rows[0]["adapter"] if gpu_rows else None,
    "driver": gpu_rows[0].get("driver") if gpu_rows else None,
    "nvidia_smi": text(os.path.join(work, "nvidia-smi.txt")) or None,
    "steps": steps,
    "bench": rows,
    "hard_log": {"mode": mode, "rows": int(log_rows), "analyze": analyses},
    "wall_s": time.time() - float(started),
}
tmp = out + ".tmp"
with open(tmp, "w") as f:
    json.dump(result, f, indent=1)
os.replace(tmp, out)
failed = [n for n, s in steps.items() if s["exit"] != 0]
print(f"device-bench: wrote {out} ({result['wall_s']:.0f} s; adapter {result['adapter']}; "
      f"failed steps: {', '.join(failed) or 'none'})")
sys.exit(1 if failed else 0)
EOF
