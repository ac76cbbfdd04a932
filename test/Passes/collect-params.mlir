// RUN: dyncc-opt %s -dyn-collect-params -split-input-file -verify-diagnostics | FileCheck %s

// Every #dyn.param of the module ends up in one sorted table; repeated
// names with the same default count once.

// CHECK: module attributes {dyn.runtime_params = {patience = #dyn.param<"patience" = 2>, rank = #dyn.param<"rank" = [0.9, 0.8]>, theta = #dyn.param<"theta" = 0.25>}}
module {
  func.func @a(%l: tensor<1x2xf32>) -> tensor<1x2xf32> {
    %r = dyn.exit_if %l criterion #dyn.entropy<threshold = #dyn.param<"theta" = 0.25>> layer 1 : tensor<1x2xf32> {
      %i = dyn.exit_if %l criterion #dyn.entropy<threshold = #dyn.param<"theta" = 0.25>> layer 2 : tensor<1x2xf32> {
        dyn.yield %l : tensor<1x2xf32>
      }
      dyn.yield %i : tensor<1x2xf32>
    }
    %p = dyn.exit_if %r criterion #dyn.patience<k = #dyn.param<"patience" = 2>> layer 1 : tensor<1x2xf32> {
      dyn.yield %l : tensor<1x2xf32>
    }
    %c = dyn.exit_if %p criterion #dyn.per_class<thresholds = #dyn.param<"rank" = [0.9, 0.8]>> layer 1 : tensor<1x2xf32> {
      dyn.yield %l : tensor<1x2xf32>
    }
    return %c : tensor<1x2xf32>
  }
}

// -----

// A model without dynamic ops has an empty table.
// CHECK: module attributes {dyn.runtime_params = {}}
module {
  func.func @static(%x: tensor<4xf32>) -> tensor<4xf32> {
    return %x : tensor<4xf32>
  }
}

// -----

module {
  func.func @conflict(%l: tensor<1x2xf32>) -> tensor<1x2xf32> {
    // expected-note @+1 {{first declared here}}
    %r = dyn.exit_if %l criterion #dyn.entropy<threshold = #dyn.param<"theta" = 0.25>> layer 1 : tensor<1x2xf32> {
      dyn.yield %l : tensor<1x2xf32>
    }
    // expected-error @+1 {{runtime parameter 'theta' is declared again with a different default (#dyn.param<"theta" = 0.5> vs #dyn.param<"theta" = 0.25>)}}
    %s = dyn.exit_if %r criterion #dyn.entropy<threshold = #dyn.param<"theta" = 0.5>> layer 1 : tensor<1x2xf32> {
      dyn.yield %l : tensor<1x2xf32>
    }
    return %s : tensor<1x2xf32>
  }
}
