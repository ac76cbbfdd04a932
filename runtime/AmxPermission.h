//===- AmxPermission.h - asking Linux for AMX's tile data -------*- C -*-===//
//
// Linux gives a process AMX's tile data (XFEATURE_XTILEDATA) only when it
// asks (arch_prctl ARCH_REQ_XCOMP_PERM); once granted, every thread of the
// process may use the tiles. Shared by the compiler (codegen/HalideTarget.cpp:
// --amx=auto asks whether this machine may) and the runtime's AMX kernel
// (runtime/AmxGemm.c: asks before the first tile instruction). C and C++.
//
//===----------------------------------------------------------------------===//

#ifndef DYNRT_AMX_PERMISSION_H
#define DYNRT_AMX_PERMISSION_H

#include <sys/syscall.h>
#include <unistd.h>

/* 1: granted (now or before), 0: refused, or not Linux on x86-64. */
static inline int dynrt_request_amx_tile_data(void) {
#if defined(__linux__) && defined(SYS_arch_prctl)
  const long kReqXcompPerm = 0x1023, kXfeatureXtiledata = 18;
  return syscall(SYS_arch_prctl, kReqXcompPerm, kXfeatureXtiledata) == 0;
#else
  return 0;
#endif
}

#endif /* DYNRT_AMX_PERMISSION_H */
