# Checks the example trainer's layering and include style:
#   - every quoted include in examples/trainer names a trainer header as "trainer/<folder>/<file>.hpp"
#     (one style for every tree; the file must exist);
#   - a header in a folder includes only headers of the same or a lower folder, bottom-up:
#       0 data/  1 nets/  2 dist/  3 train/  4 eval/  5 report/  6 commands/  (main.cpp and tests/ on top);
#   - fuzz/, benchmarks/ and tests/distributed/ include the trainer's headers the same way, and
#     otherwise only files beside them.
#   cmake -DSOURCE_DIR=<repo> -P examples/trainer/tests/include_layers.cmake
set(folders data nets dist train eval report commands)
set(errors "")

function(folder_of relpath out)  # relpath below examples/trainer
  string(REGEX MATCH "^[^/]+" top "${relpath}")
  list(FIND folders "${top}" index)
  if(index EQUAL -1)  # main.cpp, tests/: above every folder
    list(LENGTH folders index)
  endif()
  set(${out} ${index} PARENT_SCOPE)
endfunction()

function(check_file file relpath_in_trainer)
  file(STRINGS "${file}" lines REGEX "^#include \"")
  if(relpath_in_trainer)
    folder_of("${relpath_in_trainer}" from)
  endif()
  get_filename_component(dir "${file}" DIRECTORY)
  foreach(line IN LISTS lines)
    string(REGEX REPLACE "^#include \"([^\"]+)\".*" "\\1" target "${line}")
    if(target MATCHES "^trainer/(.+)$")
      set(inner "${CMAKE_MATCH_1}")
      if(NOT EXISTS "${SOURCE_DIR}/examples/trainer/${inner}")
        string(APPEND errors "  ${file}: includes \"${target}\", which does not exist\n")
      elseif(relpath_in_trainer)
        folder_of("${inner}" to)
        if(to GREATER from)
          list(GET folders ${from} from_name)
          string(APPEND errors "  ${file} (${from_name}/) includes \"${target}\", a higher folder\n")
        endif()
      endif()
    elseif(relpath_in_trainer OR NOT EXISTS "${dir}/${target}")
      string(APPEND errors "  ${file}: \"${target}\": include trainer headers as \"trainer/<folder>/<file>.hpp\"\n")
    endif()
  endforeach()
  set(errors "${errors}" PARENT_SCOPE)
endfunction()

file(GLOB_RECURSE trainer_files RELATIVE "${SOURCE_DIR}/examples/trainer"
     "${SOURCE_DIR}/examples/trainer/*.hpp" "${SOURCE_DIR}/examples/trainer/*.cpp")
foreach(rel IN LISTS trainer_files)
  check_file("${SOURCE_DIR}/examples/trainer/${rel}" "${rel}")
endforeach()
file(GLOB_RECURSE client_files "${SOURCE_DIR}/fuzz/*.cpp" "${SOURCE_DIR}/benchmarks/*.cpp"
     "${SOURCE_DIR}/tests/distributed/*.cpp" "${SOURCE_DIR}/tests/distributed/*.hpp")
foreach(file IN LISTS client_files)
  check_file("${file}" "")
endforeach()

if(errors)
  message(FATAL_ERROR "trainer includes that break the layering or the include style:\n${errors}")
endif()
list(LENGTH trainer_files count)
message(STATUS "${count} trainer files, every include points to the same or a lower folder")
