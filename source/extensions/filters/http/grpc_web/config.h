#pragma once

namespace sluice {
namespace Extensions {
namespace GrpcWeb {

inline constexpr char kFilterName[] = "grpc_web";

}  // namespace GrpcWeb
}  // namespace Extensions
}  // namespace sluice
