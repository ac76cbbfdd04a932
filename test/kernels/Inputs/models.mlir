// Compositions: layers of the example models (see KernelsTest.cpp).
