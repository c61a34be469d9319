#include "source/common/config/resource_lists.h"

#include <algorithm>

#include "absl/strings/str_cat.h"
#include "sluice/config/v1/bootstrap.pb.h"

namespace sluice {
namespace Config {

using google::protobuf::Descriptor;
using google::protobuf::FieldDescriptor;

const std::vector<const FieldDescriptor*>& resourceLists() {
  static const auto* lists = [] {
    namespace v1 = sluice::config::v1;
    const Descriptor* resources = v1::StaticResources::descriptor();
    const std::vector<const Descriptor*> first = {
        v1::Secret::descriptor(), v1::Cluster::descriptor(), v1::ClusterEndpoints::descriptor()};
    const std::vector<const Descriptor*> last = {v1::RouteTable::descriptor(),
                                                 v1::Listener::descriptor()};
    auto listOf = [resources](const Descriptor* type) -> const FieldDescriptor* {
      for (int i = 0; i < resources->field_count(); ++i) {
        if (resources->field(i)->message_type() == type) return resources->field(i);
      }
      return nullptr;
    };
    auto* out = new std::vector<const FieldDescriptor*>();
    for (const Descriptor* type : first) out->push_back(listOf(type));
    for (int i = 0; i < resources->field_count(); ++i) {
      const FieldDescriptor* f = resources->field(i);
      if (!f->is_repeated() || f->message_type() == nullptr) continue;
      if (std::find(first.begin(), first.end(), f->message_type()) == first.end() &&
          std::find(last.begin(), last.end(), f->message_type()) == last.end()) {
        out->push_back(f);
      }
    }
    for (const Descriptor* type : last) out->push_back(listOf(type));
    return out;
  }();
  return *lists;
}

std::string typeUrlOf(const FieldDescriptor& list) {
  return absl::StrCat("type.googleapis.com/", list.message_type()->full_name());
}

const FieldDescriptor* resourceListOf(absl::string_view type_url) {
  const size_t dot = type_url.rfind('.');
  const absl::string_view type =
      dot == absl::string_view::npos ? type_url : type_url.substr(dot + 1);
  for (const FieldDescriptor* list : resourceLists()) {
    if (list->message_type()->name() == type) return list;
  }
  return nullptr;
}

const FieldDescriptor* nameFieldOf(const Descriptor& type) {
  const FieldDescriptor* f = type.FindFieldByName("name");
  return f != nullptr ? f : type.FindFieldByName("cluster_name");
}

}  // namespace Config
}  // namespace sluice
