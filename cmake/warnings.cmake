function(el_warnings target)
  target_compile_options(${target} PRIVATE -Wall -Wextra -Wshadow -Wformat=2
    -Wstrict-prototypes -Wmissing-prototypes -Wno-unused-parameter)
  if(EL_WERROR)
    target_compile_options(${target} PRIVATE -Werror)
  endif()
endfunction()
