#include "source/common/http/response_flags.h"

namespace sluice {
namespace Http {

namespace {
// Indexed by ResponseFlag.
constexpr absl::string_view kShortNames[kResponseFlagCount] = {
    "NR", "NC",   "UH",   "UO", "UF", "UT",  "UPE", "UC",
    "RL", "RLSE", "UAEX", "RT", "SI", "DPE", "LR",  "DC",
};
}  // namespace

absl::string_view shortName(ResponseFlag flag) { return kShortNames[static_cast<int>(flag)]; }

void ResponseFlags::appendTo(std::string& out) const {
  bool first = true;
  for (uint32_t bits = bits_; bits != 0; bits &= bits - 1) {
    if (!first) out += ',';
    first = false;
    const absl::string_view name = kShortNames[__builtin_ctz(bits)];
    out.append(name.data(), name.size());
  }
}

}  // namespace Http
}  // namespace sluice
