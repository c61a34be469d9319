"""C++ code generation with Debian's protoc (and grpc_cpp_plugin for services)."""

def sluice_cc_proto(name, srcs, grpc = False, deps = []):
    """Generates .pb.{h,cc} (and .grpc.pb.{h,cc} with grpc=True) for srcs under api/.

    Args:
      name: cc_library name.
      srcs: .proto files relative to this package (which is the proto root, api/).
      grpc: also generate gRPC service stubs.
      deps: other sluice_cc_proto libraries these protos import.
    """
    outs = []
    for s in srcs:
        base = s[:-len(".proto")]
        outs += [base + ".pb.h", base + ".pb.cc"]
        if grpc:
            outs += [base + ".grpc.pb.h", base + ".grpc.pb.cc"]
    grpc_flags = ""
    tools = []
    if grpc:
        grpc_flags = "--grpc_out=$(GENDIR)/api --plugin=protoc-gen-grpc=/usr/bin/grpc_cpp_plugin"
    native.genrule(
        name = name + "_gen",
        srcs = srcs + [p for p in native.glob(["**/*.proto"]) if p not in srcs],
        outs = outs,
        cmd = ("/usr/bin/protoc -Iapi -I/usr/include --cpp_out=$(GENDIR)/api %s " % grpc_flags) +
              " ".join(["api/" + s for s in srcs]),
    )
    native.cc_library(
        name = name,
        srcs = [o for o in outs if o.endswith(".cc")],
        hdrs = [o for o in outs if o.endswith(".h")],
        includes = ["."],
        deps = deps + ["@system_libs//:protobuf"] + (["@system_libs//:grpcpp"] if grpc else []),
        copts = ["-w"],
    )

def sluice_cc_extension_proto(name, src, deps = ["//api:config_v1"]):
    """Generates a filter's own config message (a .proto in the filter's folder).

    The proto root is the workspace: `import "source/extensions/..."` and the api/ protos
    (`import "sluice/config/v1/..."`) both resolve. Include the result as
    "source/extensions/.../<name>.pb.h".

    Args:
      name: cc_library name.
      src: the .proto file, in this package.
      deps: sluice_cc_proto libraries it imports.
    """
    base = src[:-len(".proto")]
    pkg = native.package_name()
    native.genrule(
        name = name + "_gen",
        srcs = [src, "//api:all_protos"],
        outs = [base + ".pb.h", base + ".pb.cc"],
        cmd = "/usr/bin/protoc -I. -Iapi -I/usr/include --cpp_out=$(GENDIR) %s/%s" % (pkg, src),
    )
    native.cc_library(
        name = name,
        srcs = [base + ".pb.cc"],
        hdrs = [base + ".pb.h"],
        deps = deps + ["@system_libs//:protobuf"],
        copts = ["-w"],
    )
