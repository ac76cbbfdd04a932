//===- Run.cpp - dyncc run: compile and run a model on .npy files ---------===//
//
// The model is compiled to a shared object (by the driver) and loaded here
// with dlopen; its descriptor and the runtime's C API come from that object,
// so this file only reads and writes .npy files.
//
//===----------------------------------------------------------------------===//

#include "tools/dyncc/Run.h"

#include "runtime/Npy.h"
#include "runtime/Status.h"
#include "runtime/Weights.h"

#include "llvm/Support/FileSystem.h"

#include <fmt/format.h>

#include <dlfcn.h>

#include <algorithm>
#include <cmath>
#include <cstring>

namespace dyncc {
namespace {

/// The runtime functions, taken from the loaded model.
struct Api {
  decltype(&dynrt_model_create_from_file) create;
  decltype(&dynrt_model_run_ex) run;
  decltype(&dynrt_model_destroy) destroy;
  decltype(&dynrt_status_message) message;
  decltype(&dynrt_status_free) free;
};

std::string shapeText(const int64_t *shape, int rank) {
  return fmt::format("[{}]", fmt::join(shape, shape + rank, ", "));
}

double elementAt(const dynrt::NpyArray &a, size_t i) {
  const uint8_t *p = a.bytes.data() + i * dynrt_dtype_size(a.dtype);
  switch (a.dtype) {
  case DYNRT_F32: {
    float f;
    std::memcpy(&f, p, 4);
    return f;
  }
  case DYNRT_F64: {
    double d;
    std::memcpy(&d, p, 8);
    return d;
  }
  case DYNRT_I32: {
    int32_t x;
    std::memcpy(&x, p, 4);
    return x;
  }
  case DYNRT_I64: {
    int64_t x;
    std::memcpy(&x, p, 8);
    return static_cast<double>(x);
  }
  default:
    return *p;
  }
}

void printArray(llvm::raw_ostream &os, const std::string &name,
                const dynrt::NpyArray &a) {
  size_t n = a.bytes.size() / std::max<size_t>(1, dynrt_dtype_size(a.dtype));
  os << fmt::format("{}: {}{} =", name, dynrt_dtype_name(a.dtype),
                    shapeText(a.shape.data(), (int)a.shape.size()));
  size_t shown = std::min<size_t>(n, 64);
  for (size_t i = 0; i < shown; ++i)
    os << fmt::format(" {:.6g}", elementAt(a, i));
  if (shown < n)
    os << fmt::format(" ... ({} values)", n);
  os << "\n";
}

/// The mistakes a weights file reveals that loading it does not: tensors
/// the model does not use, and inputs named like a tensor of the file (an
/// argument that lacks its {dyn.weight = ...} mark). Warnings only: the
/// runtime reports a file it cannot bind when the model is created.
void warnAboutWeights(const dynrt_model_desc_t &desc, const std::string &path,
                      llvm::raw_ostream &errs) {
  dynrt_weights_t *weights = nullptr;
  dynrt::StatusPtr st(dynrt_weights_open_file(path.c_str(), &weights));
  if (st)
    return;
  auto isWeight = [&](const char *name) {
    for (int w = 0; w < desc.num_weights; ++w)
      if (std::strcmp(desc.weights[w].name, name) == 0)
        return true;
    return false;
  };
  std::vector<std::string> unused = dynrt::unusedTensors(weights, isWeight);
  for (const std::string &name : unused)
    for (int in = 0; in < desc.num_inputs; ++in)
      if (desc.inputs[in].name == name)
        errs << fmt::format("dyncc: warning: input '{}' has the name of a "
                            "tensor in '{}': if it is a weight, mark its "
                            "argument {{dyn.weight = \"{}\"}}\n",
                            dynrt::clipped(name), path, dynrt::clipped(name));
  if (!unused.empty())
    errs << fmt::format("dyncc: warning: '{}' holds {} tensor(s) the model "
                        "does not use, e.g. '{}'\n",
                        path, unused.size(), dynrt::clipped(unused.front()));
  dynrt_weights_release(weights);
}

/// The most steps `dyncc run` keeps in a skip trace (12 MiB).
constexpr int32_t kMaxTraceSteps = 1 << 20;

} // namespace

int runModel(const RunOptions &options, llvm::raw_ostream &outs,
             llvm::raw_ostream &errs) {
  auto fail = [&](const std::string &message) {
    errs << "dyncc: error: " << message << "\n";
    return 1;
  };
  void *handle = dlopen(options.sharedObject.c_str(), RTLD_NOW | RTLD_LOCAL);
  if (!handle)
    return fail(fmt::format("cannot load the compiled model: {}", dlerror()));
  auto sym = [&](const char *name) { return dlsym(handle, name); };
  auto *desc = static_cast<const dynrt_model_desc_t *>(
      sym((options.modelName + "_desc").c_str()));
  Api api{reinterpret_cast<decltype(Api::create)>(sym("dynrt_model_create_from_file")),
          reinterpret_cast<decltype(Api::run)>(sym("dynrt_model_run_ex")),
          reinterpret_cast<decltype(Api::destroy)>(sym("dynrt_model_destroy")),
          reinterpret_cast<decltype(Api::message)>(sym("dynrt_status_message")),
          reinterpret_cast<decltype(Api::free)>(sym("dynrt_status_free"))};
  if (!desc || !api.create || !api.run || !api.destroy || !api.message || !api.free)
    return fail("the compiled model lacks its descriptor or the runtime");

  if ((int)options.inputs.size() != desc->num_inputs) {
    std::string expected;
    for (int i = 0; i < desc->num_inputs; ++i)
      expected += fmt::format("\n  {} {}{}", desc->inputs[i].name,
                              dynrt_dtype_name(desc->inputs[i].dtype),
                              shapeText(desc->inputs[i].shape, desc->inputs[i].rank));
    return fail(fmt::format("the model takes {} input(s), {} given; in order:{}",
                            desc->num_inputs, options.inputs.size(), expected));
  }
  std::vector<dynrt::NpyArray> inputs(desc->num_inputs);
  std::vector<const void *> inputPtrs;
  for (int i = 0; i < desc->num_inputs; ++i) {
    dynrt::StatusPtr st(dynrt::readNpy(options.inputs[i], inputs[i]));
    if (st)
      return fail(dynrt_status_message(st.get()));
    const dynrt_param_spec_t &spec = desc->inputs[i];
    bool same = inputs[i].dtype == spec.dtype &&
                (int)inputs[i].shape.size() == spec.rank &&
                std::equal(inputs[i].shape.begin(), inputs[i].shape.end(), spec.shape);
    if (!same)
      return fail(fmt::format(
          "'{}': input '{}' must be {}{}, the file holds {}{}", options.inputs[i],
          spec.name, dynrt_dtype_name(spec.dtype), shapeText(spec.shape, spec.rank),
          dynrt_dtype_name(inputs[i].dtype),
          shapeText(inputs[i].shape.data(), (int)inputs[i].shape.size())));
    inputs[i].bytes.reserve(1); // a zero-sized tensor still has an address
    inputPtrs.push_back(inputs[i].bytes.data());
  }
  if (desc->num_weights > 0 && options.weights.empty())
    return fail(fmt::format("the model has {} weight tensor(s): give "
                            "--weights file.safetensors",
                            desc->num_weights));

  if (!options.weights.empty())
    warnAboutWeights(*desc, options.weights, errs);

  dynrt_model_options_t modelOptions{}; // the model's own runtime initializes
  modelOptions.device = DYNRT_DEVICE_AUTO;
  modelOptions.num_threads = options.threads;
  dynrt_model_t *model = nullptr;
  if (dynrt_status_t st = api.create(desc, &modelOptions,
                                     options.weights.c_str(), &model)) {
    std::string message = api.message(st);
    api.free(st);
    return fail(message);
  }
  auto setParam = reinterpret_cast<decltype(&dynrt_model_set_param)>(
      sym("dynrt_model_set_param"));
  for (const std::string &assignment : options.params) {
    size_t eq = assignment.find('=');
    std::vector<float> values;
    std::string name = assignment.substr(0, eq);
    bool ok = eq != std::string::npos;
    for (size_t at = eq + 1; ok && at <= assignment.size();) {
      size_t comma = assignment.find(',', at);
      std::string text = assignment.substr(at, comma == std::string::npos
                                                   ? std::string::npos
                                                   : comma - at);
      char *end = nullptr;
      values.push_back(std::strtof(text.c_str(), &end));
      ok = !text.empty() && end && *end == '\0';
      if (comma == std::string::npos)
        break;
      at = comma + 1;
    }
    if (!ok) {
      api.destroy(model);
      return fail(fmt::format("--param expects name=value[,value...], got '{}'",
                              assignment));
    }
    if (dynrt_status_t st = setParam(model, name.c_str(), values.data(), values.size())) {
      std::string message = api.message(st);
      api.free(st);
      api.destroy(model);
      return fail(message);
    }
  }
  std::vector<dynrt::NpyArray> outputs(desc->num_outputs);
  std::vector<void *> outputPtrs;
  for (int i = 0; i < desc->num_outputs; ++i) {
    const dynrt_param_spec_t &spec = desc->outputs[i];
    outputs[i].dtype = spec.dtype;
    outputs[i].shape.assign(spec.shape, spec.shape + spec.rank);
    size_t bytes = dynrt_dtype_size(spec.dtype);
    for (int d = 0; d < spec.rank; ++d)
      bytes *= spec.shape[d];
    outputs[i].bytes.assign(bytes, 0xFF); // poison: NaN for floats
    outputs[i].bytes.reserve(1);
    outputPtrs.push_back(outputs[i].bytes.data());
  }
  // The dynamic decisions of the last run: what every route op did.
  int numRoutes = std::max(0, desc->num_routes);
  std::vector<dynrt_route_report_t> routes(numRoutes);
  std::vector<std::vector<uint64_t>> perExpert(numRoutes);
  std::vector<dynrt::NpyArray> assignments(numRoutes);
  for (int i = 0; i < numRoutes; ++i) {
    const dynrt_route_desc_t &rd = desc->routes[i];
    perExpert[i].assign(std::max(0, rd.num_experts), 0);
    assignments[i].dtype = DYNRT_I32;
    assignments[i].shape = {rd.num_tokens, rd.experts_per_token};
    assignments[i].bytes.assign(
        sizeof(int32_t) * std::max(0, rd.num_tokens * rd.experts_per_token), 0);
    routes[i].tokens_per_expert = perExpert[i].data();
    routes[i].assignment = reinterpret_cast<int32_t *>(assignments[i].bytes.data());
  }
  // And every skimming loop's steps.
  int numSkips = std::max(0, desc->num_skips);
  std::vector<dynrt_skip_report_t> skips(numSkips);
  std::vector<std::vector<int32_t>> traces(numSkips);
  for (int i = 0; i < numSkips; ++i) {
    // The trace holds at most kMaxTraceSteps steps: a budget from the model
    // (up to 2^31 - 1) must not size an allocation up front.
    int32_t budget = std::clamp(desc->skips[i].budget, 0, kMaxTraceSteps);
    traces[i].assign(3 * (size_t)budget, -1);
    skips[i].capacity = budget;
    skips[i].trace = traces[i].data();
  }
  dynrt_run_report_t report{numRoutes, routes.data(), numSkips, skips.data()};
  for (int r = 0; r < std::max(1, options.repeat); ++r) {
    if (dynrt_status_t st = api.run(model, inputPtrs.data(), outputPtrs.data(),
                                    numRoutes || numSkips ? &report : nullptr)) {
      std::string message = api.message(st);
      api.free(st);
      api.destroy(model);
      return fail(message);
    }
  }
  api.destroy(model);

  if (!options.outputDir.empty())
    if (std::error_code ec = llvm::sys::fs::create_directories(options.outputDir))
      return fail(fmt::format("cannot create '{}': {}", options.outputDir,
                              ec.message()));
  for (int i = 0; i < desc->num_outputs; ++i) {
    printArray(outs, desc->outputs[i].name, outputs[i]);
    if (!options.outputDir.empty()) {
      std::string path = options.outputDir + "/" + desc->outputs[i].name + ".npy";
      dynrt::StatusPtr st(dynrt::writeNpy(path, outputs[i]));
      if (st)
        return fail(dynrt_status_message(st.get()));
    }
  }
  for (int i = 0; i < numSkips; ++i) {
    std::string name = desc->skips[i].name ? desc->skips[i].name : "skip";
    int32_t steps = std::min(skips[i].steps, skips[i].capacity);
    if (skips[i].steps > skips[i].capacity)
      errs << fmt::format("dyncc: note: skip {} took {} steps; its trace "
                          "keeps the first {}\n",
                          i, skips[i].steps, skips[i].capacity);
    outs << fmt::format("{}: {} step(s); (position, action, amount):", name,
                        skips[i].steps);
    for (int32_t k = 0; k < steps; ++k)
      outs << fmt::format(" ({}, {}, {})", traces[i][3 * k], traces[i][3 * k + 1],
                          traces[i][3 * k + 2]);
    outs << "\n";
    if (!options.outputDir.empty()) {
      dynrt::NpyArray trace;
      trace.dtype = DYNRT_I32;
      trace.shape = {steps, 3};
      trace.bytes.resize(sizeof(int32_t) * 3 * (size_t)steps);
      std::memcpy(trace.bytes.data(), traces[i].data(), trace.bytes.size());
      std::string path = options.outputDir + "/" + name + ".trace.npy";
      dynrt::StatusPtr st(dynrt::writeNpy(path, trace));
      if (st)
        return fail(dynrt_status_message(st.get()));
    }
  }
  for (int i = 0; i < numRoutes; ++i) {
    std::string name = desc->routes[i].name ? desc->routes[i].name : "route";
    outs << fmt::format("{}: tokens per expert [{}], dropped {}\n", name,
                        fmt::join(perExpert[i], ", "), routes[i].dropped);
    printArray(outs, name + ".assignment", assignments[i]);
    if (!options.outputDir.empty()) {
      std::string path = options.outputDir + "/" + name + ".assignment.npy";
      dynrt::StatusPtr st(dynrt::writeNpy(path, assignments[i]));
      if (st)
        return fail(dynrt_status_message(st.get()));
    }
  }
  return 0;
}

} // namespace dyncc
