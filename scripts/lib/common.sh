# Shared helpers for the scripts in scripts/. Source it; do not run it.

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
TARGET_DIR="${CARGO_TARGET_DIR:-$ROOT/target}"
# Built flow components, one `<name>.wasm` per flow.
FLOWS_DIR="$TARGET_DIR/flows"
FLOW_CRATES=(workouts exercises)
# Flows built only for the tests, never shipped: one misbehaves on purpose,
# the other names its version in every reply.
TEST_FLOW_CRATES=(hostile tally)

log() { printf '==> %s\n' "$*" >&2; }

# Builds the given flow crates (default: the shipped ones) for
# wasm32-wasip2 and copies the components to the folder in $2.
build_flows() {
    local crates=("${FLOW_CRATES[@]}") out="$FLOWS_DIR"
    if [[ $# -gt 0 ]]; then crates=($1); out="$2"; fi
    local packages=()
    for crate in "${crates[@]}"; do packages+=(-p "$crate"); done
    log "building flows: ${crates[*]}"
    (cd "$ROOT" && cargo build --profile flow --target wasm32-wasip2 "${packages[@]}")
    mkdir -p "$out"
    for crate in "${crates[@]}"; do
        # Copy then rename, so a running host never reads a half-written file.
        cp "$TARGET_DIR/wasm32-wasip2/flow/$crate.wasm" "$out/.$crate.wasm.tmp"
        mv "$out/.$crate.wasm.tmp" "$out/$crate.wasm"
    done
}

# Built test-only flows, one `<name>.wasm` per flow.
TEST_FLOWS_DIR="$TARGET_DIR/test-flows"

# Builds flow crate $1 with cargo features $2 and copies the component to
# $TEST_FLOWS_DIR/$3.wasm.
build_flow_variant() {
    local crate="$1" features="$2" name="$3"
    log "building flow $crate with features $features as $name.wasm"
    (cd "$ROOT" && cargo build --profile flow --target wasm32-wasip2 -p "$crate" --features "$features")
    mkdir -p "$TEST_FLOWS_DIR"
    cp "$TARGET_DIR/wasm32-wasip2/flow/$crate.wasm" "$TEST_FLOWS_DIR/.$name.wasm.tmp"
    mv "$TEST_FLOWS_DIR/.$name.wasm.tmp" "$TEST_FLOWS_DIR/$name.wasm"
}

# Builds every test-only flow, with the tally variants of state schema 2.
build_test_flows() {
    build_flows "${TEST_FLOW_CRATES[*]}" "$TEST_FLOWS_DIR"
    build_flow_variant tally schema2 tally-schema2
    build_flow_variant tally schema2-no-migrate tally-schema2-no-migrate
    # The plain build last, so target/ contains it for the next run.
    build_flows tally "$TEST_FLOWS_DIR"
}

# Prints a free TCP port on 127.0.0.1.
free_port() {
    python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1]); s.close()'
}

# Starts a project-local redis-server from redis-conf/ with its data in
# $ROOT/.run/redis, and sets REDIS_URL and LOCAL_REDIS_PID.
start_local_redis() {
    local dir="$ROOT/.run/redis" port password
    mkdir -p "$dir"
    if [[ ! -s "$dir/password" ]]; then
        python3 -c 'import secrets; print(secrets.token_hex(16))' > "$dir/password"
        chmod 600 "$dir/password"
    fi
    password="${REDIS_PASSWORD:-$(cat "$dir/password")}"
    port="$(free_port)"
    redis-server "$ROOT/redis-conf/redis.conf" --port "$port" --dir "$dir" \
        --requirepass "$password" --logfile "$dir/redis.log" &
    LOCAL_REDIS_PID=$!
    for _ in $(seq 50); do
        if redis-cli -p "$port" -a "$password" --no-auth-warning ping >/dev/null 2>&1; then
            export REDIS_URL="redis://:$password@127.0.0.1:$port/0"
            log "local redis on 127.0.0.1:$port (data in .run/redis)"
            return 0
        fi
        sleep 0.1
    done
    log "redis-server did not start; see $dir/redis.log"
    return 1
}
