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
