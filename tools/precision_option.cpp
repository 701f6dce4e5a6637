#include "tools/precision_option.h"

#include <cstdio>

#include "core/bf16_support.h"
#include "core/error.h"
#include "tools/command.h"

namespace mpncov::tools {

Precision precision_option(const Args& args, Precision fallback) {
  if (!args.has("precision")) return fallback;
  const std::optional<Precision> p = parse_precision(args.get("precision"));
  if (!p) throw UsageError{str("--precision must be ", kPrecisionChoices, ", got '", args.get("precision"), "'")};
  return *p;
}

void use_precision(Net& net, Precision precision, Device device) {
  net.set_precision(precision);
  apply_precision(precision, device);
  const std::string notice = bf16_notice_once(precision, device);
  if (!notice.empty()) std::fprintf(stderr, "%s\n", notice.c_str());
}

}  // namespace mpncov::tools
