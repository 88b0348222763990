/* io/stb_impl.c — the one translation unit that compiles stb_image and stb_image_write (header-only libraries). */
#define STB_IMAGE_IMPLEMENTATION
#define STB_IMAGE_WRITE_IMPLEMENTATION
#include "stb_image.h"
#include "stb_image_write.h"
