#pragma once

#include <string>
#include <vector>

#include "absl/strings/string_view.h"
#include "source/extensions/filters/http/rate_limit/policy.h"

struct redisReply;

namespace sluice {
namespace Extensions {
namespace RateLimit {

// The Lua script that checks and counts one request against every window of a policy in one
// atomic step (Redis runs a script alone), with the same buckets as LocalStore. Time comes from
// the Redis server (TIME), so gateways with skewed clocks still share the same windows.
const std::string& scriptText();
// Lower-case hex SHA-1 of scriptText(): what SCRIPT LOAD returns and EVALSHA takes.
const std::string& scriptSha1();

// The Redis key of one window: "sluice:rl:{<policy>/<F|S>/<identity>}:<window>". The braces
// are a Redis Cluster hash tag: all windows of one identity live in one slot.
std::string redisKey(const CompiledPolicy& policy, absl::string_view identity,
                     const WindowSpec& window);

// The whole EVALSHA command for one request, in RESP (what goes on the wire): the SHA,
// numkeys, the keys, then the script's arguments. Formatted here in one string: hiredis's
// printf-style formatter costs several times more.
std::string scriptCommand(const CompiledPolicy& policy, absl::string_view identity);

// Reads the script's reply into `out`. False (with `error`) when the reply is not the script's
// (an error reply, or an unexpected shape).
bool parseScriptReply(const redisReply& reply, const CompiledPolicy& policy, Decision& out,
                      std::string& error);

}  // namespace RateLimit
}  // namespace Extensions
}  // namespace sluice
