// saxpy: y[i] = a * x[i] + y[i] for i < count (element-wise float math).
#include "ids.h"

__kernel void saxpy(float a, __global const float *x, __global float *y, uint count) {
  uint i = global_id(0);
  if (i < count)
    y[i] = a * x[i] + y[i];
}
