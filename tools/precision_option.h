// --precision P on train, eval, extract and time: the math of the convolution and linear layers
// (core/precision.h), overriding the experiment's solver.precision.
#pragma once
#include <string>

#include "core/device.h"
#include "core/precision.h"
#include "nets/net.h"
#include "tools/args.h"

namespace mpncov::tools {

// --precision when given (a usage error for an unknown name), else `fallback`.
Precision precision_option(const Args& args, Precision fallback);

// Runs the net's convolution and linear layers in `precision` on `device`; prints the CPU's bfloat16
// notice, if any, to stderr.
void use_precision(Net& net, Precision precision, Device device);

}  // namespace mpncov::tools
