#pragma once

#include <cstdint>

namespace sluice {
namespace Extensions {
namespace GrpcStats {

inline constexpr char kFilterName[] = "grpc_stats";
inline constexpr uint32_t kDefaultMaxMethods = 1000;
inline constexpr uint32_t kMaxMaxMethods = 100000;

}  // namespace GrpcStats
}  // namespace Extensions
}  // namespace sluice
