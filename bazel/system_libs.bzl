"""System libraries from Debian's packages, wired through pkg-config at fetch time.

Each library becomes `@system_libs//:<name>`, a cc_library carrying the link flags and defines
that pkg-config reports for the installed package, so the flags always match the machine.
"""

_LIBS = {
    # name: pkg-config modules
    "grpcpp": ["grpc++", "grpc", "gpr"],
    "protobuf": ["protobuf"],
    "absl": [
        "absl_strings",
        "absl_str_format",
        "absl_status",
        "absl_statusor",
        "absl_flat_hash_map",
        "absl_flat_hash_set",
        "absl_synchronization",
        "absl_time",
        "absl_random_random",
    ],
    "libevent": ["libevent_core", "libevent_pthreads"],
    "re2": ["re2"],
    "yaml_cpp": ["yaml-cpp"],
    "spdlog": ["spdlog", "fmt"],
    "openssl": ["libssl", "libcrypto"],
    "cares": ["libcares"],
    "nghttp2": ["libnghttp2"],
    "hiredis": ["hiredis"],
    "gtest": ["gtest", "gmock"],
    "gtest_main": ["gtest_main", "gmock"],
    "benchmark": ["benchmark"],
    # Header-only (/usr/include/rapidjson): no link flags, a dependency for the build graph.
    "rapidjson": ["RapidJSON"],
}

_EXTRA_LINKOPTS = {
    "benchmark": ["-lbenchmark_main", "-lpthread"],
    "grpcpp": ["-lgrpc++_reflection"],
}

def _pkg_config(ctx, modules, flag):
    res = ctx.execute(["pkg-config", flag] + modules)
    if res.return_code != 0:
        fail("pkg-config %s %s failed (run tools/setup.sh): %s" % (flag, " ".join(modules), res.stderr))
    return [f for f in res.stdout.strip().split(" ") if f]

def _system_libs_impl(ctx):
    lines = ['package(default_visibility = ["//visibility:public"])', ""]
    for name, modules in _LIBS.items():
        libs = _pkg_config(ctx, modules, "--libs")
        cflags = _pkg_config(ctx, modules, "--cflags")
        defines = [f[2:] for f in cflags if f.startswith("-D")]
        copts = [f for f in cflags if not f.startswith("-D") and not f.startswith("-I/usr/include")]
        includes = [f[2:] for f in cflags if f.startswith("-I") and f != "-I/usr/include"]
        copts = copts + ["-isystem" + i for i in includes if i.startswith("/")]
        linkopts = libs + _EXTRA_LINKOPTS.get(name, [])
        lines.append("cc_library(")
        lines.append('    name = "%s",' % name)
        lines.append("    linkopts = %s," % repr(linkopts))
        lines.append("    defines = %s," % repr(defines))
        lines.append("    copts = %s," % repr(copts))
        lines.append(")")
        lines.append("")
    ctx.file("BUILD", "\n".join(lines))
    ctx.file("WORKSPACE", 'workspace(name = "%s")\n' % ctx.name)

system_libs = repository_rule(
    implementation = _system_libs_impl,
    local = True,
    environ = ["PKG_CONFIG_PATH"],
)

def sluice_system_libraries():
    system_libs(name = "system_libs")
    native.new_local_repository(
        name = "llhttp",
        path = "/usr/share",
        build_file = "@sluice//bazel:llhttp.BUILD",
    )
