#include "nets/net_spec.h"

#include <cctype>
#include <fstream>
#include <map>
#include <set>
#include <sstream>

#include "core/error.h"
#include "core/text.h"
#include "layers/layer.h"

namespace mpncov {

const char* part_name(NetPart part) {
  switch (part) {
    case NetPart::Features: return "features";
    case NetPart::Representation: return "representation";
    case NetPart::Classifier: return "classifier";
  }
  return "?";
}

std::string LayerSpec::where() const { return line > 0 ? str(file, ":", line) : file; }

Config LayerSpec::config() const {
  Config c(node, file, str("layer '", name, "' (", type, ")"), args, overrides);
  for (const char* reserved : {"name", "type", "inputs", "when"}) c.ignore(reserved);
  for (const std::string& k : ignored) c.ignore(k);
  return c;
}

YAML::Node LayerSpec::resolved_keys() const {
  const Config c = config();
  YAML::Node out(YAML::NodeType::Map);
  static const std::vector<std::string> reserved = {"name", "type", "inputs", "when"};
  if (node && node.IsMap())
    for (const auto& kv : node) {
      const std::string k = kv.first.as<std::string>();
      if (std::find(reserved.begin(), reserved.end(), k) == reserved.end() &&
          std::find(ignored.begin(), ignored.end(), k) == ignored.end())
        out[k] = c.value(k);
    }
  for (const auto& kv : overrides) out[kv.first] = kv.second;
  return out;
}

int NetSpec::find(const std::string& n) const {
  for (size_t i = 0; i < layers.size(); ++i)
    if (layers[i].name == n) return static_cast<int>(i);
  return -1;
}

namespace {

[[noreturn]] void fail_at(const std::string& file, const YAML::Node& node, const std::string& message) {
  const int line = node && node.Mark().line >= 0 ? node.Mark().line + 1 : 0;
  throw Error(line ? str(file, ":", line, ": ", message) : str(file, ": ", message));
}

std::string join(const std::string& prefix, const std::string& name) {
  return prefix.empty() ? name : prefix + "." + name;
}

// One scope of names while expanding a list: local name -> full name of the layer whose output it is.
struct Scope {
  std::map<std::string, std::string> outputs;
  std::set<std::string> later;  // names defined further down the same list (to explain forward references)
  std::string input;            // what `input` means here
};

struct Expander {
  NetSpec& spec;
  const YAML::Node& blocks;
  NetPart part;
  std::string file;                                 // the file being expanded (changes inside blocks)
  const std::map<std::string, std::string>* origin;  // block name -> the file defining it
  int child = -1;
  int depth = 0;

  std::string resolve_input(const Scope& scope, const std::string& given, const YAML::Node& at,
                            const std::string& layer, const ConfigArgs& args) {
    const std::string ref = substitute(given, at, args);
    if (ref == kNetInput) return scope.input;
    auto it = scope.outputs.find(ref);
    if (it != scope.outputs.end()) return it->second;
    if (ref == layer)
      fail_at(file, at, str("layer '", layer, "' takes its own output as input: a cycle"));
    if (scope.later.count(ref))
      fail_at(file, at, str("layer '", layer, "' takes input '", ref, "', which is defined after it: a cycle or "
                            "a forward reference (layers must come after their inputs)"));
    std::vector<std::string> known = {kNetInput};
    for (const auto& kv : scope.outputs) known.push_back(kv.first);
    fail_at(file, at, str("layer '", layer, "': unknown input '", ref, "'", did_you_mean(ref, known)));
  }

  // "$x" names the block argument x; anything else is itself.
  std::string substitute(const std::string& text, const YAML::Node& at, const ConfigArgs& args) {
    if (text.size() < 2 || text[0] != '$') return text;
    auto a = args.find(text.substr(1));
    if (a == args.end()) fail_at(file, at, str("unknown argument '", text, "'"));
    return a->second.as<std::string>();
  }

  // Whether an item is part of the net: its `when` (a boolean or "$arg") is true or absent.
  bool included(const YAML::Node& item, const ConfigArgs& args) {
    if (!item["when"]) return true;
    const YAML::Node w = item["when"];
    try {
      if (w.IsScalar() && w.Scalar().size() > 1 && w.Scalar()[0] == '$') {
        auto a = args.find(w.Scalar().substr(1));
        if (a == args.end()) fail_at(file, w, str("unknown argument '", w.Scalar(), "'"));
        return a->second.as<bool>();
      }
      return w.as<bool>();
    } catch (const YAML::Exception&) {
      fail_at(file, w, "'when' must be true, false or a boolean block argument");
    }
  }

  // Expands `items` in a scope; returns the full name of the last output.
  std::string expand_list(const YAML::Node& items, Scope scope, const std::string& prefix, const ConfigArgs& args,
                          bool top_level) {
    if (!items.IsSequence()) fail_at(file, items, "expected a list of layers");
    std::string previous = scope.input;
    // Local names, for forward-reference errors and duplicates.
    std::set<std::string> seen;
    for (size_t i = 0; i < items.size(); ++i) {
      const YAML::Node item = items[i];
      if (!item.IsMap()) fail_at(file, item, "each layer must be a mapping (name, type, ...)");
      if (!included(item, args)) continue;
      const std::string local = local_name(item, i, top_level, items.size());
      if (!seen.insert(local).second) fail_at(file, item, str("duplicate layer name '", local, "'"));
      scope.later.insert(local);
    }
    for (size_t i = 0; i < items.size(); ++i) {
      const YAML::Node item = items[i];
      if (!included(item, args)) continue;
      const std::string local = local_name(item, i, top_level, items.size());
      scope.later.erase(local);
      if (top_level && part == NetPart::Features) child = static_cast<int>(i);
      std::vector<std::string> inputs;
      if (item["inputs"]) {
        const YAML::Node in = item["inputs"];
        if (in.IsScalar()) {
          inputs.push_back(resolve_input(scope, in.Scalar(), in, local, args));
        } else if (in.IsSequence() && in.size() > 0) {
          for (const YAML::Node& r : in) inputs.push_back(resolve_input(scope, r.as<std::string>(), r, local, args));
        } else {
          fail_at(file, in, str("layer '", local, "': inputs must be a name or a non-empty list of names"));
        }
      } else {
        inputs.push_back(previous);
      }
      const std::string full = join(prefix, local);
      previous = item["block"] ? expand_block_item(item, full, inputs, args) : add_layer(item, full, inputs, args);
      scope.outputs[local] = previous;
    }
    return previous;
  }

  // An unnamed item is numbered like nn.Sequential's children: "features.3" at the top, "3" in a block;
  // a lone unnamed representation is "representation".
  std::string local_name(const YAML::Node& item, size_t index, bool top_level, size_t count) {
    if (!item["name"]) {
      if (!top_level) return std::to_string(index);
      if (part == NetPart::Representation && count == 1) return "representation";
      return str(part_name(part), ".", index);
    }
    const YAML::Node n = item["name"];
    if (!n.IsScalar() || n.Scalar().empty()) fail_at(file, n, "a layer name must be a non-empty string");
    return n.Scalar();
  }

  std::string add_layer(const YAML::Node& item, const std::string& full, const std::vector<std::string>& inputs,
                        const ConfigArgs& args) {
    if (!item["type"]) fail_at(file, item, str("layer '", full, "' needs a type (or a block)"));
    if (item["repeat"] || item["first"] || item["args"])
      fail_at(file, item, str("layer '", full, "': repeat, first and args belong to block instances"));
    LayerSpec l;
    l.name = full;
    l.type = item["type"].as<std::string>();
    try {
      layer_info(l.type);
    } catch (const Error& e) {
      fail_at(file, item["type"], str("layer '", full, "': ", e.what()));
    }
    if (spec.find(full) >= 0) fail_at(file, item, str("duplicate layer name '", full, "'"));
    l.inputs = inputs;
    l.node = item;
    l.args = args;
    l.file = file;
    l.line = item.Mark().line + 1;
    l.part = part;
    l.child = part == NetPart::Features ? child : -1;
    spec.layers.push_back(std::move(l));
    return full;
  }

  // The arguments of one block instance: the block's defaults, then the instance's `args`.
  ConfigArgs block_args(const YAML::Node& def, const std::string& block, const YAML::Node& given,
                        const ConfigArgs& outer, const std::string& full) {
    ConfigArgs result;
    std::vector<std::string> names;
    if (def["args"]) {
      if (!def["args"].IsMap()) fail_at(file, def["args"], str("block '", block, "': args must be a mapping"));
      for (const auto& kv : def["args"]) {
        names.push_back(kv.first.as<std::string>());
        result[names.back()] = kv.second;
      }
    }
    if (given && !given.IsNull()) {
      if (!given.IsMap()) fail_at(file, given, str("block instance '", full, "': args must be a mapping"));
      for (const auto& kv : given) {
        const std::string k = kv.first.as<std::string>();
        if (!result.count(k))
          fail_at(file, kv.first, str("block instance '", full, "': block '", block, "' has no argument '", k, "'",
                                      did_you_mean(k, names)));
        const YAML::Node v = kv.second;
        // A value "$x" refers to the enclosing block's argument x.
        if (v.IsScalar() && v.Scalar().size() > 1 && v.Scalar()[0] == '$') {
          auto o = outer.find(v.Scalar().substr(1));
          if (o == outer.end())
            fail_at(file, v, str("block instance '", full, "': unknown argument '", v.Scalar(), "'"));
          result[k].reset(o->second);
        } else {
          result[k].reset(v);
        }
      }
    }
    for (const auto& kv : result)
      if (!kv.second || kv.second.IsNull())
        fail_at(file, given && !given.IsNull() ? given : def, str("block instance '", full, "': argument '", kv.first, "' of block '",
                                              block, "' is required"));
    return result;
  }

  std::string expand_block_item(const YAML::Node& item, const std::string& full,
                                const std::vector<std::string>& inputs, const ConfigArgs& outer) {
    if (item["type"]) fail_at(file, item, str("'", full, "' has both a type and a block"));
    for (const auto& kv : item) {
      const std::string k = kv.first.as<std::string>();
      static const std::vector<std::string> valid = {"name", "block", "inputs", "repeat", "args", "first", "when",
                                                     "names_from", "dense"};
      if (std::find(valid.begin(), valid.end(), k) == valid.end())
        fail_at(file, kv.first, str("block instance '", full, "': unknown key '", k, "'", did_you_mean(k, valid)));
    }
    if (inputs.size() != 1) fail_at(file, item, str("block instance '", full, "' takes exactly one input"));
    int repeat = 0;  // 0: a single instance named `full`; n: instances full.0 ... full.(n-1)
    if (item["repeat"]) {
      repeat = item["repeat"].as<int>();
      if (repeat < 1) fail_at(file, item["repeat"], str("block instance '", full, "': repeat must be at least 1"));
    }
    if (item["first"] && !repeat) fail_at(file, item["first"], "'first' needs 'repeat'");
    const auto [stem, first_number] = repetition_names(item, full, repeat);
    const bool dense = item["dense"] && as_bool(item["dense"], str("block instance '", full, "': dense"));
    if (dense && !repeat) fail_at(file, item["dense"], "'dense' needs 'repeat'");
    // Dense connectivity: every repetition reads the concatenation of the instance's input and the outputs
    // of all earlier repetitions, and the instance's output is the concatenation of all of them.
    std::vector<std::string> pieces = {inputs[0]};
    std::string previous = inputs[0];
    for (int r = 0; r < std::max(repeat, 1); ++r) {
      const std::string instance = repeat ? join(full, stem + std::to_string(first_number + r)) : full;
      if (dense && pieces.size() > 1) previous = add_concat(item, join(instance, "concat"), pieces);
      // reset() rebinds a handle; assigning to a YAML::Node would overwrite the node it refers to.
      YAML::Node block_name, given;  // reset() takes only existing nodes
      block_name.reset(item["block"]);
      if (item["args"]) given.reset(item["args"]);
      if (r == 0 && item["first"]) {
        const YAML::Node first = item["first"];
        if (first["block"]) block_name.reset(first["block"]);
        if (first["args"]) {  // merged over the instance's args
          YAML::Node merged(YAML::NodeType::Map);
          if (given.IsMap()) for (const auto& kv : given) merged[kv.first.as<std::string>()] = kv.second;
          for (const auto& kv : first["args"]) merged[kv.first.as<std::string>()] = kv.second;
          given.reset(merged);
        }
      }
      const std::string name = block_name.as<std::string>();
      const YAML::Node def = blocks ? blocks[name] : YAML::Node();
      if (!def) {
        std::vector<std::string> known;
        if (blocks) for (const auto& kv : blocks) known.push_back(kv.first.as<std::string>());
        fail_at(file, block_name, str("unknown block '", name, "'", did_you_mean(name, known)));
      }
      if (!def["layers"]) fail_at(file, def, str("block '", name, "' has no layers"));
      if (++depth > 16) fail_at(file, item, str("blocks nested more than 16 deep at '", full, "' (recursion?)"));
      const ConfigArgs args = block_args(def, name, given, outer, full);
      Scope scope;
      scope.input = previous;
      const std::string caller = file;
      if (origin && origin->count(name)) file = origin->at(name);
      previous = expand_list(def["layers"], scope, instance, args, false);
      file = caller;
      --depth;
      pieces.push_back(previous);
    }
    if (dense) previous = add_concat(item, join(full, "concat"), pieces);
    return previous;
  }

  bool as_bool(const YAML::Node& n, const std::string& what) {
    try {
      return n.as<bool>();
    } catch (const YAML::Exception&) {
      fail_at(file, n, str(what, " must be true or false"));
    }
  }

  // The names of repetitions: `names_from: denselayer1` names them denselayer1, denselayer2, ... (the
  // trailing number is the first one); the default numbers them 0, 1, ...
  std::pair<std::string, int> repetition_names(const YAML::Node& item, const std::string& full, int repeat) {
    if (!item["names_from"]) return {"", 0};
    const YAML::Node n = item["names_from"];
    if (!repeat) fail_at(file, n, "'names_from' needs 'repeat'");
    const std::string text = n.IsScalar() ? n.Scalar() : "";
    size_t digits = text.size();
    while (digits > 0 && std::isdigit(static_cast<unsigned char>(text[digits - 1]))) --digits;
    if (digits == text.size() || text.size() - digits > 6)
      fail_at(file, n, str("block instance '", full, "': names_from must end with the first number, e.g. "
                           "denselayer1 or 0, got '", text, "'"));
    return {text.substr(0, digits), std::stoi(text.substr(digits))};
  }

  // A concat layer (no parameters) joining `pieces` along the channels, defined where `item` is.
  std::string add_concat(const YAML::Node& item, const std::string& full, const std::vector<std::string>& pieces) {
    if (spec.find(full) >= 0) fail_at(file, item, str("duplicate layer name '", full, "'"));
    LayerSpec l;
    l.name = full;
    l.type = "concat";
    l.inputs = pieces;
    l.file = file;
    l.line = item.Mark().line + 1;
    l.part = part;
    l.child = part == NetPart::Features ? child : -1;
    spec.layers.push_back(std::move(l));
    return full;
  }
};

std::vector<int64_t> parse_input_shape(const YAML::Node& n, const std::string& file) {
  std::vector<int64_t> dims;
  try {
    dims = n.as<std::vector<int64_t>>();
  } catch (const YAML::Exception&) {
  }
  if (dims.size() != 3 || dims[0] < 1 || dims[1] < 1 || dims[2] < 1)
    fail_at(file, n, "input must be [channels, height, width], e.g. [3, 224, 224]");
  return dims;
}

YAML::Node load_yaml(const std::string& path);
// The blocks of a file and of the files it includes (paths relative to the including file); a file's
// own definitions win over included ones.
YAML::Node gather_blocks(const YAML::Node& root, const std::string& file, int depth,
                         std::map<std::string, std::string>& origin) {
  if (depth > 8) fail_at(file, root["include"], "includes nested more than 8 deep (a cycle?)");
  YAML::Node blocks(YAML::NodeType::Map);
  if (const YAML::Node inc = root["include"]) {
    if (!inc.IsSequence()) fail_at(file, inc, "include must be a list of files");
    const std::string dir = file.find('/') == std::string::npos ? "" : file.substr(0, file.rfind('/') + 1);
    for (const YAML::Node& f : inc) {
      const std::string path = dir + f.as<std::string>();
      const YAML::Node other = load_yaml(path);
      for (const auto& kv : other) {
        const std::string k = kv.first.as<std::string>();
        if (k != "blocks" && k != "include" && k != "description")
          fail_at(path, kv.first, str("an included file holds only blocks (and includes), not '", k, "'"));
      }
      for (const auto& kv : gather_blocks(other, path, depth + 1, origin)) blocks[kv.first.as<std::string>()] = kv.second;
    }
  }
  if (const YAML::Node own = root["blocks"]) {
    if (!own.IsMap()) fail_at(file, own, "blocks must be a mapping of block names to definitions");
    for (const auto& kv : own) {
      blocks[kv.first.as<std::string>()] = kv.second;
      origin[kv.first.as<std::string>()] = file;
    }
  }
  return blocks;
}

YAML::Node load_yaml(const std::string& path) {
  std::ifstream in(path);
  if (!in) throw Error(str("cannot open '", path, "'"));
  try {
    return YAML::Load(in);
  } catch (const YAML::ParserException& e) {
    throw Error(str(path, ":", e.mark.line + 1, ": YAML syntax error: ", e.msg));
  }
}

}  // namespace

std::string expand_items(NetSpec& spec, const YAML::Node& items, const YAML::Node& blocks, NetPart part,
                         const std::string& previous, const std::string& file, const std::string& prefix,
                         const std::map<std::string, std::string>* block_files) {
  Expander e{spec, blocks, part, file, block_files};
  Scope scope;
  scope.input = previous;
  // Earlier parts' top-level names stay visible (e.g. a classifier item may name a features layer).
  for (const LayerSpec& l : spec.layers) scope.outputs[l.name] = l.name;
  if (!items.IsMap()) return e.expand_list(items, scope, prefix, {}, true);
  // One item: a list of one. (A fresh node: assigning to a YAML::Node would overwrite what it refers to.)
  YAML::Node list(YAML::NodeType::Sequence);
  list.push_back(items);
  return e.expand_list(list, scope, prefix, {}, true);
}

std::string add_flatten(NetSpec& spec, const std::string& previous) {
  LayerSpec l;
  l.name = "flatten";
  l.type = "flatten";
  l.inputs = {previous};
  l.file = spec.file;
  l.part = NetPart::Classifier;
  spec.layers.push_back(l);
  return l.name;
}

NetSpec parse_net(const std::string& text, const std::string& file) {
  YAML::Node root;
  try {
    root = YAML::Load(text);
  } catch (const YAML::ParserException& e) {
    throw Error(str(file, ":", e.mark.line + 1, ": YAML syntax error: ", e.msg));
  }
  if (!root || !root.IsMap()) throw Error(str(file, ": a net file is a mapping with name, input, features, ..."));
  static const std::vector<std::string> valid = {"name", "input", "include", "blocks", "features",
                                                 "representation", "classifier", "description"};
  for (const auto& kv : root) {
    const std::string k = kv.first.as<std::string>();
    if (std::find(valid.begin(), valid.end(), k) == valid.end())
      fail_at(file, kv.first, str("unknown key '", k, "'", did_you_mean(k, valid)));
  }
  NetSpec spec;
  spec.file = file;
  spec.name = root["name"] ? root["name"].as<std::string>() : file;
  spec.input_shape = root["input"] ? parse_input_shape(root["input"], file) : std::vector<int64_t>{3, 224, 224};
  std::map<std::string, std::string> origin;
  const YAML::Node blocks = gather_blocks(root, file, 0, origin);
  if (!root["features"] || !root["features"].IsSequence() || root["features"].size() == 0)
    fail_at(file, root, "the net has no layers: it needs a non-empty 'features' list");
  std::string last = expand_items(spec, root["features"], blocks, NetPart::Features, kNetInput, file, "", &origin);
  spec.feature_children = static_cast<int>(root["features"].size());
  if (root["representation"] && !root["representation"].IsNull())
    last = expand_items(spec, root["representation"], blocks, NetPart::Representation, last, file, "", &origin);
  if (root["classifier"] && !root["classifier"].IsNull()) {
    last = add_flatten(spec, last);
    expand_items(spec, root["classifier"], blocks, NetPart::Classifier, last, file, "", &origin);
  }
  return spec;
}

NetSpec load_net(const std::string& path) {
  std::ifstream in(path);
  if (!in) throw Error(str("cannot open net file '", path, "'"));
  std::stringstream text;
  text << in.rdbuf();
  return parse_net(text.str(), path);
}

}  // namespace mpncov
