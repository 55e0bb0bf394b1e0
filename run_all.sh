#!/usr/bin/env bash
# genbench's front door.
#   ./run_all.sh            set up .venv (once) and run the default benchmark into results/default
#   ./run_all.sh test       set up .venv (once) and run the test suite
#   ./run_all.sh smoke      the CI-sized preset into results/smoke
#   ./run_all.sh nightly    nightly preset; compare with results/reference/nightly (quality)
#                           and this machine's history (latency); history plots; report
set -euo pipefail
cd "$(dirname "$0")"
VENV=.venv
PY="$VENV/bin/python"

setup() {
    if [ ! -x "$PY" ]; then
        python3.11 -m venv "$VENV" 2>/dev/null || python3 -m venv "$VENV"
    fi
    # The torch pair is pinned because it is the one served locally on the reference machines;
    # pyproject admits a range. The stamp makes a second call skip pip entirely.
    local stamp="$VENV/.genbench-installed"
    local want
    want=$(cat pyproject.toml | sha256sum | cut -c1-16)
    if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$want" ]; then
        echo "setting up $VENV (first run only; torch is large, this takes a few minutes)" >&2
        local log="$VENV/pip-install.log"
        if ! { "$PY" -m pip install --upgrade pip \
               && "$PY" -m pip install "torch==2.14.1" "torchvision==0.29.1" \
               && "$PY" -m pip install -e ".[dev,dist,kernels,runtimes]"; } >"$log" 2>&1; then
            tail -n 40 "$log" >&2
            echo "run_all.sh: installing into $VENV failed; the full log is $log" >&2
            exit 1
        fi
        echo "$want" > "$stamp"
    fi
}

cmd="${1:-default}"
[ $# -gt 0 ] && shift
case "$cmd" in
    test)
        setup
        exec "$PY" -m pytest -q "$@"
        ;;
    default|smoke)
        setup
        "$PY" -m bench run --preset "$cmd" --out "results/$cmd" "$@"
        "$PY" -m bench plot "results/$cmd"
        "$PY" -m bench table "results/$cmd"
        "$PY" -m bench report "results/$cmd"
        echo "results, plots and tables are in results/$cmd"
        ;;
    nightly)
        # Quality against the committed nightly reference (same preset and eval settings; on
        # another machine compare skips latency and says so); latency against this machine's
        # last nightly in the history store (compared before this run is appended to it).
        setup
        out="results/nightly"
        reference="results/reference/nightly"
        store="results/history.csv"
        "$PY" -m bench run --preset nightly --out "$out" "$@"
        "$PY" -m bench plot "$out"
        "$PY" -m bench table "$out"
        status=0
        "$PY" -m bench compare "$reference" "$out" --markdown "$out/compare.md" \
            --json "$out/compare.json" || status=$?
        history_status=0
        "$PY" -m bench compare --history "$store" "$out" --markdown "$out/compare_history.md" \
            --json "$out/compare_history.json" || history_status=$?
        "$PY" -m bench history append "$out" --store "$store"
        "$PY" -m bench history plot --store "$store" --out "$out/plots"
        if [ -f "$reference/run.json" ]; then
            "$PY" -m bench report "$out" --baseline "$reference"
        else
            "$PY" -m bench report "$out"
        fi
        # The worse of the two verdicts: 2 (bad input, settings differ) > 1 (regression) > 0.
        exit "$(( status > history_status ? status : history_status ))"
        ;;
    *)
        echo "usage: ./run_all.sh [default|smoke|nightly|test] [extra args]" >&2
        exit 2
        ;;
esac
