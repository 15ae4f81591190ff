// int_divmod: integer division and modulo (expanded by the compiler into multiply/shift
// sequences, no divide instruction exists):
//   q32[2i] = a / b, q32[2i+1] = a % b (signed 32); u32[2i] = (uint)a / (uint)b, [2i+1] = %;
//   q64[2i] = (long)a * 77777 / (long)b, [2i+1] = (ulong)(a * 77777L) % (ulong)(b & 0xffff | 1)
#include "ids.h"

__kernel void int_divmod(__global const int *a, __global const int *b, __global int *q32,
                         __global uint *u32, __global long *q64, uint count) {
  uint i = global_id(0);
  if (i >= count)
    return;
  int x = a[i], y = b[i];
  q32[2 * i] = x / y;
  q32[2 * i + 1] = x % y;
  u32[2 * i] = (uint)x / (uint)y;
  u32[2 * i + 1] = (uint)x % (uint)y;
  long wx = (long)x * 77777;
  q64[2 * i] = wx / (long)y;
  q64[2 * i + 1] = (long)((ulong)wx % (ulong)((y & 0xffff) | 1));
}
