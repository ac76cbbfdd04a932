# Sourced by the bench scripts that time PyTorch eager: the settings that give
# the baseline its best, stable time on this machine.
#
# Without OPENBLAS_CORETYPE, Debian's OpenBLAS picks a generic kernel here
# (WORKLOADS.md). Without OMP_WAIT_POLICY=PASSIVE, PyTorch's OpenMP threads
# spin after each parallel region (index_select, gelu, ...) and, on 2 cores,
# take the CPUs from OpenBLAS's own threads in the next GEMM: the eager model
# then runs 2-4x slower and erratically. OMP_WAIT_POLICY=default keeps
# libgomp's default; the tables say which policy they ran with.
export OPENBLAS_CORETYPE=SkylakeX
policy="${OMP_WAIT_POLICY:-PASSIVE}"
if [ "$policy" = default ]; then unset OMP_WAIT_POLICY; else export OMP_WAIT_POLICY="$policy"; fi
