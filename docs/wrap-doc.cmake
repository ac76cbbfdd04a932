# Puts a header on the generated dialect reference.
file(READ "${BODY}" body)
file(WRITE "${OUT}" "<!-- Generated from dialect/*.td by `cmake --build build --target dyncc-doc`; do not edit. -->\n${body}")
