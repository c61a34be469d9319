#include "source/extensions/filters/http/auth/token_cache.h"

namespace sluice {
namespace Extensions {
namespace Auth {

const Identity* TokenCache::find(absl::string_view token) {
  auto it = index_.find(token);
  if (it == index_.end()) return nullptr;
  if (it->second != lru_.begin()) lru_.splice(lru_.begin(), lru_, it->second);
  return &it->second->identity;
}

void TokenCache::insert(absl::string_view token, Identity identity) {
  if (capacity_ == 0) return;
  auto it = index_.find(token);
  if (it != index_.end()) {
    it->second->identity = std::move(identity);
    lru_.splice(lru_.begin(), lru_, it->second);
    return;
  }
  if (index_.size() >= capacity_) {
    index_.erase(absl::string_view(lru_.back().token));
    lru_.pop_back();
  }
  lru_.push_front(Entry{std::string(token), std::move(identity)});
  index_.emplace(absl::string_view(lru_.front().token), lru_.begin());
}

void TokenCache::erase(absl::string_view token) {
  auto it = index_.find(token);
  if (it == index_.end()) return;
  auto entry = it->second;
  index_.erase(it);
  lru_.erase(entry);
}

TokenCache& TokenCache::forThisThread(uint64_t policy_id, const std::weak_ptr<const void>& owner,
                                      size_t capacity) {
  struct Slot {
    std::weak_ptr<const void> owner;
    std::unique_ptr<TokenCache> cache;
  };
  thread_local absl::flat_hash_map<uint64_t, Slot> t_caches;
  auto it = t_caches.find(policy_id);
  if (it != t_caches.end()) return *it->second.cache;
  // A new policy object (config change): drop the caches of policies that are gone.
  for (auto s = t_caches.begin(); s != t_caches.end();) {
    auto cur = s++;
    if (cur->second.owner.expired()) t_caches.erase(cur);
  }
  Slot& slot = t_caches[policy_id];
  slot.owner = owner;
  slot.cache = std::make_unique<TokenCache>(capacity);
  return *slot.cache;
}

}  // namespace Auth
}  // namespace Extensions
}  // namespace sluice
