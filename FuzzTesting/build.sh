#!/usr/bin/env bash
# Builds the libFuzzer targets outside SwiftPM: RDBKit and RDBSinks are compiled as static libraries with
# coverage (-sanitize=fuzzer) and AddressSanitizer, then each target in FuzzTesting/Sources/<name>/ is
# compiled with FuzzTesting/Sources/Common/*.swift and linked against them and the system liblzf/libzstd.
#
#   FuzzTesting/build.sh            # all targets
#   FuzzTesting/build.sh rdb lzf    # only these (the libraries are rebuilt when a source is newer)
#
# Output: FuzzTesting/.build/fuzz-<name>. Environment: SWIFTC (default swiftc), FUZZ_OPT (default -O).
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
repo="$(cd "$here/.." && pwd)"
out="$here/.build"
mkdir -p "$out"
swiftc="${SWIFTC:-swiftc}"
opt="${FUZZ_OPT:--O}"
all_targets=(rdb streaming listpack ziplist intset zipmap stream lzf aof manifest seedgen)
targets=("$@")
[ ${#targets[@]} -eq 0 ] && targets=("${all_targets[@]}")

# C libraries: the package's module maps, the include/link flags from pkg-config.
cflags="$(pkg-config --cflags liblzf libzstd 2>/dev/null || echo -I/usr/include/liblzf)"
libs="$(pkg-config --libs liblzf libzstd 2>/dev/null || echo -llzf -lzstd)"
cmods=(-Xcc "-fmodule-map-file=$repo/Sources/CLZF/module.modulemap" -Xcc "-fmodule-map-file=$repo/Sources/CZstd/module.modulemap"
       -Xcc "-fmodule-map-file=$repo/Sources/CCRC64Fold/include/module.modulemap" -Xcc "-I$repo/Sources/CCRC64Fold/include")
# shellcheck disable=SC2206
cinc=($cflags)
common=(-sanitize=fuzzer,address -parse-as-library "$opt" -g -wmo -swift-version 6 -use-ld=lld -module-cache-path "$out/ModuleCache")

newer() {  # newer TARGET DIR...: whether any .swift under DIR is newer than TARGET
    local t="$1"; shift
    [ ! -e "$t" ] && return 0
    [ -n "$(find "$@" -name '*.swift' -newer "$t" -print -quit)" ]
}

lib() {  # lib NAME [DEPENDENCY]: rebuilt when a source or the dependency's library is newer
    local name="$1" dep="${2:-}"
    if newer "$out/lib$name.a" "$repo/Sources/$name" || { [ -n "$dep" ] && [ "$out/lib$dep.a" -nt "$out/lib$name.a" ]; }; then
        echo "build: lib$name.a" >&2
        # shellcheck disable=SC2046
        "$swiftc" "${common[@]}" -emit-library -static -module-name "$name" \
            -emit-module -emit-module-path "$out/$name.swiftmodule" -I "$out" "${cinc[@]}" "${cmods[@]}" \
            $(find "$repo/Sources/$name" -name '*.swift' | sort) -o "$out/lib$name.a"
    fi
}

# The package's own C code (CCRC64Fold), compiled with the same sanitizer.
cobj="$out/crc64_fold.o"
if [ ! -e "$cobj" ] || [ "$repo/Sources/CCRC64Fold/crc64_fold.c" -nt "$cobj" ]; then
    echo "build: crc64_fold.o" >&2
    "${CC:-clang}" -O2 -g -fsanitize=address,fuzzer-no-link -I"$repo/Sources/CCRC64Fold/include" \
        -c "$repo/Sources/CCRC64Fold/crc64_fold.c" -o "$cobj"
fi

lib RDBKit
lib RDBSinks RDBKit

for t in "${targets[@]}"; do
    src="$here/Sources/$t"
    [ -d "$src" ] || { echo "build: no target $t" >&2; exit 2; }
    bin="$out/fuzz-$t"
    if [ "$out/libRDBKit.a" -nt "$bin" ] || [ "$out/libRDBSinks.a" -nt "$bin" ] || [ "$cobj" -nt "$bin" ] || newer "$bin" "$src" "$here/Sources/Common"; then
        echo "build: fuzz-$t" >&2
        # shellcheck disable=SC2046,SC2086
        "$swiftc" "${common[@]}" -module-name "Fuzz_$t" -I "$out" "${cinc[@]}" "${cmods[@]}" \
            $(find "$src" "$here/Sources/Common" -name '*.swift' | sort) \
            "$out/libRDBSinks.a" "$out/libRDBKit.a" "$cobj" $libs -o "$bin"
    fi
done
