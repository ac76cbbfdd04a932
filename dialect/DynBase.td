//===- DynBase.td - the dyn dialect ------------------------*- tablegen -*-===//
//
// The dialect of dynamic decisions: routing (width), skipping (time) and
// early exit (depth).
//
//===----------------------------------------------------------------------===//

#ifndef DYN_BASE_TD
#define DYN_BASE_TD

include "mlir/IR/OpBase.td"
include "mlir/IR/AttrTypeBase.td"

def Dyn_Dialect : Dialect {
  let name = "dyn";
  let cppNamespace = "::dyncc::dyn";
  let summary = "Dynamic decisions of dynamic neural networks";
  let description = [{
    The `dyn` dialect keeps the three families of dynamic decisions of
    dynamic neural networks for NLP explicit, so that dyncc can lower them to
    static-shaped kernels plus real control flow:

    | family | what is dynamic | op |
    |---|---|---|
    | mixture of experts | width: which experts each token visits | `dyn.route` |
    | skimming | time: which steps get full, partial or no computation | `dyn.skip` |
    | early exit | depth: at which layer a sample (or token) stops | `dyn.exit_if` |

    The ops carry their computation in regions (the rest of the network after
    an exit point, the expert body, the per-step cell) and their policy in
    attributes. Thresholds that a deployment wants to retune are *runtime
    parameters* (`#dyn.param`): they have a name and a default, and the
    generated library lets the caller change them without recompiling.

    Every other op of a model comes from the upstream dialects (`func`,
    `arith`, `math`, `tensor`, `linalg`).
  }];
  let useDefaultAttributePrinterParser = 1;
  // Function argument and result attributes `dyn.weight`, `dyn.name`, ...:
  // a misspelt or mistyped one would otherwise silently turn a weight into
  // an input.
  let hasRegionArgAttrVerify = 1;
  let hasRegionResultAttrVerify = 1;
  let extraClassDeclaration = [{
    /// Defined next to the attribute storage classes (DynAttrs.cpp).
    void registerAttributes();
  }];
}

class Dyn_Op<string mnemonic, list<Trait> traits = []>
    : Op<Dyn_Dialect, mnemonic, traits>;

class Dyn_Attr<string name, string attrMnemonic, list<Trait> traits = []>
    : AttrDef<Dyn_Dialect, name, traits> {
  let mnemonic = attrMnemonic;
}

#endif // DYN_BASE_TD
