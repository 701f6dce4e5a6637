// The topology dump of `mpncov inspect`: one row per layer (name, type, inputs, output shape, parameters,
// FLOPs, activation memory) with totals, and the graph as Graphviz DOT with the features, representation
// and classifier parts drawn apart.
#pragma once
#include <string>

#include "nets/net.h"

namespace mpncov {

// The net must be set up. Activation memory counts each output a layer stores (not those computed in place).
// In evaluation mode the layers the last forward folded into a convolution's run are marked (fused): run
// one forward first to see them (mpncov inspect does).
std::string topology_table(const Net& net);
std::string topology_dot(const Net& net);

}  // namespace mpncov
