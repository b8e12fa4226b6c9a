# Embed a file as a NUL-terminated C byte array (no escaping pitfalls):
#   cmake -DIN=file -DOUT=file.c -DNAME=symbol -DHEADER=engine/deploy.h -P embed.cmake
file(READ "${IN}" hex HEX)
string(REGEX REPLACE "([0-9a-f][0-9a-f])" "0x\\1," bytes "${hex}")
file(WRITE "${OUT}" "/* generated from ${IN} by cmake/embed.cmake: do not edit */\n"
     "#include \"${HEADER}\"\nconst char ${NAME}[] = {${bytes}0};\n")
