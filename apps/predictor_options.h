// apps/predictor_options.h — the model/weights/device/precision/max-disp options shared by `stereort infer` and
// `stereort eval`, read from their cxxopts results (both declare --model --weights --device --precision --max-disp).
#pragma once
#include <cxxopts.hpp>
#include <filesystem>
#include <string>

#include "core/check.h"
#include "core/context.h"
#include "models/infer.h"

namespace stereort {
namespace app {

// "" -> CUDA when a GPU is present, else the CPU; otherwise Device::parse (cpu, cuda, cuda:N).
inline Device device_or_default(const std::string& s) {
  return s.empty() ? (cuda_available() ? Device::cuda(0) : Device::cpu()) : Device::parse(s);
}

inline PredictorOptions predictor_options(const cxxopts::ParseResult& a) {
  PredictorOptions po;
  po.model = a["model"].as<std::string>();
  po.weights = a["weights"].as<std::string>();
  po.device = device_or_default(a["device"].as<std::string>());
  po.precision = a["precision"].as<std::string>();
  po.max_disp = a["max-disp"].as<int64_t>();
  if (!po.weights.empty())
    STEREORT_CHECK(std::filesystem::is_regular_file(po.weights), "weights file '{}' does not exist", po.weights);
  return po;
}

}  // namespace app
}  // namespace stereort
