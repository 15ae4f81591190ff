// subdword: byte and short loads/stores with sign and zero extension:
//   b_out[i] = b_in[i] + 1 (uchar, wraps); s_out[i] = s_in[i] * 3 (short, wraps);
//   w[i] = (int)(char)b_in[i] + (int)s_in[i] + (int)(ushort)s_in[i]
#include "ids.h"

__kernel void subdword(__global const uchar *b_in, __global const short *s_in,
                       __global uchar *b_out, __global short *s_out, __global int *w,
                       uint count) {
  uint i = global_id(0);
  if (i >= count)
    return;
  uchar b = b_in[i];
  short s = s_in[i];
  b_out[i] = (uchar)(b + 1);
  s_out[i] = (short)(s * 3);
  w[i] = (int)(char)b + (int)s + (int)(ushort)s;
}
