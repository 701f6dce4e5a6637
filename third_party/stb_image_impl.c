/* The one translation unit that compiles stb_image (Debian's libstb-dev headers). */
#define STB_IMAGE_IMPLEMENTATION
#define STBI_FAILURE_USERMSG
#include <stb_image.h>
