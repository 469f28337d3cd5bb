# Writes OUT, a C file defining `const char NAME[]` (NUL-terminated) and
# `const size_t NAME_len` for each NAME=FILE pair in ASSETS, |-separated.
# Run as: cmake -DOUT=... "-DASSETS=name=file|name=file" -P embed.cmake
set(text "/* Generated from the files named below; edit those. */\n#include <stddef.h>\n")
string(REPLACE "|" ";" ASSETS "${ASSETS}")
foreach(pair IN LISTS ASSETS)
  string(REPLACE "=" ";" parts "${pair}")
  list(GET parts 0 name)
  list(GET parts 1 file)
  file(READ "${file}" hex HEX)
  string(LENGTH "${hex}" hexlen)
  math(EXPR len "${hexlen} / 2")
  string(REGEX REPLACE "([0-9a-f][0-9a-f])" "0x\\1," bytes "${hex}")
  string(REGEX REPLACE "(0x..,0x..,0x..,0x..,0x..,0x..,0x..,0x..,0x..,0x..,0x..,0x..,0x..,0x..,0x..,0x..,)" "\\1\n" bytes "${bytes}")
  get_filename_component(base "${file}" NAME)
  string(APPEND text "\n/* ${base} */\nconst char ${name}[] = {\n${bytes}0x00};\nconst size_t ${name}_len = ${len};\n")
endforeach()
file(WRITE "${OUT}.tmp" "${text}")
file(RENAME "${OUT}.tmp" "${OUT}")
