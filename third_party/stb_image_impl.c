/* The one translation unit that compiles stb_image (Debian's libstb-dev headers), for the formats
   data/decode.cpp gives it: JPEG goes through libjpeg-turbo and PNG through libpng. */
#define STB_IMAGE_IMPLEMENTATION
#define STBI_FAILURE_USERMSG
#define STBI_ONLY_BMP
#define STBI_ONLY_GIF
#define STBI_ONLY_PNM
#include <stb_image.h>
