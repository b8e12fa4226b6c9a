# Embed several files of one directory as a NULL-terminated table of {path, text}:
#   cmake -DBASE=dir -DFILES="a.yaml|crds/b.yaml" -DOUT=file.c -DNAME=symbol
#         -DHEADER=engine/deploy.h -P embed_files.cmake
# Paths are relative to BASE and kept as given (the table's order is FILES' order).
string(REPLACE "|" ";" files "${FILES}")
set(body "/* generated from ${BASE} by cmake/embed_files.cmake: do not edit */\n")
string(APPEND body "#include \"${HEADER}\"\n")
set(table "")
set(i 0)
foreach(f IN LISTS files)
  file(READ "${BASE}/${f}" hex HEX)
  string(REGEX REPLACE "([0-9a-f][0-9a-f])" "0x\\1," bytes "${hex}")
  string(APPEND body "static const char f${i}[] = {${bytes}0};\n")
  string(APPEND table "    {\"${f}\", f${i}},\n")
  math(EXPR i "${i} + 1")
endforeach()
string(APPEND body "const eng_deploy_file ${NAME}[] = {\n${table}    {0, 0}};\n")
file(WRITE "${OUT}" "${body}")
