#include <map>

#include "absl/strings/str_join.h"
#include "source/common/http/filter.h"

namespace sluice {
namespace Http {

FilterState::StringListObject::StringListObject(std::vector<std::string> values)
    : values_(std::move(values)), joined_(absl::StrJoin(values_, ", ")) {}
namespace {
std::map<std::string, std::unique_ptr<NamedHttpFilterConfigFactory>>& registry() {
  static auto* r = new std::map<std::string, std::unique_ptr<NamedHttpFilterConfigFactory>>();
  return *r;
}
}  // namespace

void FilterRegistry::add(std::unique_ptr<NamedHttpFilterConfigFactory> factory) {
  std::string name = factory->name();
  registry()[name] = std::move(factory);
}

NamedHttpFilterConfigFactory* FilterRegistry::get(const std::string& name) {
  auto it = registry().find(name);
  return it == registry().end() ? nullptr : it->second.get();
}

std::vector<std::string> FilterRegistry::names() {
  std::vector<std::string> out;
  for (const auto& [n, f] : registry()) out.push_back(n);
  return out;
}

}  // namespace Http
}  // namespace sluice
