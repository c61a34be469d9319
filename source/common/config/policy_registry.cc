#include "source/common/config/policy_registry.h"

#include <algorithm>
#include <cstdio>
#include <cstdlib>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"

namespace sluice {
namespace Config {
namespace {

struct Entry {
  std::unique_ptr<PolicyType> type;
  const google::protobuf::FieldDescriptor* field;
  std::string type_name;
};

std::vector<Entry>& entries() {
  static auto* e = new std::vector<Entry>();
  return *e;
}

std::vector<const PolicyType*>& ordered() {
  static auto* o = new std::vector<const PolicyType*>();
  return *o;
}

const Entry* entryOf(const PolicyType& type) {
  for (const Entry& e : entries()) {
    if (e.type.get() == &type) return &e;
  }
  return nullptr;
}

}  // namespace

void PolicyTypeRegistry::add(std::unique_ptr<PolicyType> type) {
  const auto* field =
      sluice::config::v1::StaticResources::descriptor()->FindFieldByName(type->field());
  // A registration that names no repeated message field of StaticResources is a programming
  // error of the filter that makes it: fail at start, not on the first config.
  if (field == nullptr || !field->is_repeated() ||
      field->type() != google::protobuf::FieldDescriptor::TYPE_MESSAGE) {
    fprintf(stderr, "policy type registered with unknown StaticResources field \"%s\"\n",
            type->field().c_str());
    abort();
  }
  Entry e{std::move(type), field, field->message_type()->name()};
  entries().push_back(std::move(e));
  auto& o = ordered();
  o.clear();
  std::vector<const Entry*> sorted;
  for (const Entry& x : entries()) sorted.push_back(&x);
  std::sort(sorted.begin(), sorted.end(),
            [](const Entry* a, const Entry* b) { return a->field->number() < b->field->number(); });
  for (const Entry* x : sorted) o.push_back(x->type.get());
}

const std::vector<const PolicyType*>& PolicyTypeRegistry::all() { return ordered(); }

const PolicyType* PolicyTypeRegistry::get(absl::string_view type_name) {
  for (const Entry& e : entries()) {
    if (e.type_name == type_name) return e.type.get();
  }
  return nullptr;
}

const google::protobuf::FieldDescriptor* PolicyTypeRegistry::fieldOf(const PolicyType& type) {
  const Entry* e = entryOf(type);
  return e == nullptr ? nullptr : e->field;
}

const std::string& PolicyTypeRegistry::typeName(const PolicyType& type) {
  static const std::string empty;
  const Entry* e = entryOf(type);
  return e == nullptr ? empty : e->type_name;
}

std::string describeType(absl::string_view type_name) {
  std::string out;
  for (char c : type_name) {
    if (absl::ascii_isupper(static_cast<unsigned char>(c)) && !out.empty()) out.push_back(' ');
    out.push_back(absl::ascii_tolower(static_cast<unsigned char>(c)));
  }
  return out;
}

bool PolicySet::add(const std::string& type_name, const std::string& name,
                    std::shared_ptr<const google::protobuf::Message> policy) {
  return types_[type_name].emplace(name, std::move(policy)).second;
}

const google::protobuf::Message* PolicySet::find(absl::string_view type_name,
                                                 absl::string_view name) const {
  auto t = types_.find(type_name);
  if (t == types_.end()) return nullptr;
  auto p = t->second.find(name);
  return p == t->second.end() ? nullptr : p->second.get();
}

const PolicySet::ByName& PolicySet::of(absl::string_view type_name) const {
  static const ByName empty;
  auto t = types_.find(type_name);
  return t == types_.end() ? empty : t->second;
}

void buildPolicies(
    const sluice::config::v1::StaticResources& resources, const PolicyValidationOptions& options,
    const std::function<std::string(const PolicyType&, int, const std::string&)>& namer,
    PolicySet& out, ErrorList& errors) {
  const auto* reflection = resources.GetReflection();
  for (const PolicyType* type : PolicyTypeRegistry::all()) {
    const auto* field = PolicyTypeRegistry::fieldOf(*type);
    const std::string& type_name = PolicyTypeRegistry::typeName(*type);
    const auto* name_field = field->message_type()->FindFieldByName("name");
    const int n = reflection->FieldSize(resources, field);
    for (int i = 0; i < n; ++i) {
      const auto& policy = reflection->GetRepeatedMessage(resources, field, i);
      const std::string name =
          name_field == nullptr ? "" : policy.GetReflection()->GetString(policy, name_field);
      const std::string path = namer(*type, i, name);
      if (name.empty()) {
        errors.add(path + ".name", "is required");
        continue;
      }
      std::shared_ptr<google::protobuf::Message> copy(policy.New());
      copy->CopyFrom(policy);
      if (!out.add(type_name, name, std::move(copy))) {
        errors.add(path + ".name",
                   absl::StrCat("duplicate ", describeType(type_name), " \"", name, "\""));
      }
      type->validate(policy, path, options, errors);
    }
  }
}

}  // namespace Config
}  // namespace sluice
