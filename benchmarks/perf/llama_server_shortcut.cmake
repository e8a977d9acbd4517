# llama-server built against the venv's own llama.cpp libraries (llama-cpp-python 0.3.36
# installs libllama, libggml* and libllama-common under site-packages/lib): only mtmd,
# cpp-httplib, the UI stub and the server are compiled (70 steps, 14 min with -j2 at nice
# 15 on 2 shared cores, load 6-8). benchmarks/perf/README.md, "Issue 46 on a real engine",
# says where this goes: in place of llama.cpp's own ggml/src/common/tools section of its
# top-level CMakeLists.txt, configured with VENV_SITE set to the venv's site-packages.
find_package(Threads REQUIRED)
set(VENV_LIB "$ENV{VENV_SITE}/lib")
set(VENV_PKGLIB "$ENV{VENV_SITE}/llama_cpp/lib")
function(venv_import name file)
    add_library(${name} SHARED IMPORTED GLOBAL)
    set_target_properties(${name} PROPERTIES IMPORTED_LOCATION "${file}")
endfunction()
foreach(dir IN ITEMS "${VENV_LIB}" "${VENV_PKGLIB}")
  foreach(lib ggml ggml-base ggml-cpu llama llama-common mtmd)
    if (NOT TARGET ${lib} AND EXISTS "${dir}/lib${lib}.so")
      venv_import(${lib} "${dir}/lib${lib}.so")
    endif()
  endforeach()
endforeach()
set_target_properties(ggml PROPERTIES INTERFACE_INCLUDE_DIRECTORIES "${CMAKE_CURRENT_SOURCE_DIR}/ggml/include")
set_property(TARGET ggml APPEND PROPERTY INTERFACE_LINK_LIBRARIES ggml-base)
set_target_properties(llama PROPERTIES INTERFACE_INCLUDE_DIRECTORIES "${CMAKE_CURRENT_SOURCE_DIR}/include"
    INTERFACE_LINK_LIBRARIES ggml)
set_target_properties(llama-common PROPERTIES INTERFACE_INCLUDE_DIRECTORIES "${CMAKE_CURRENT_SOURCE_DIR}/common;${CMAKE_CURRENT_SOURCE_DIR}/vendor"
    INTERFACE_LINK_LIBRARIES "llama;vendor::nlohmann;vendor::sheredom;Threads::Threads"
    INTERFACE_COMPILE_DEFINITIONS LLAMA_SUBPROCESS INTERFACE_COMPILE_FEATURES cxx_std_17)
if (TARGET mtmd)
  set_target_properties(mtmd PROPERTIES INTERFACE_INCLUDE_DIRECTORIES "${CMAKE_CURRENT_SOURCE_DIR}/tools/mtmd"
      INTERFACE_LINK_LIBRARIES llama)
endif()
add_subdirectory(vendor)
llama_add_compile_flags()
if (NOT TARGET mtmd)
  add_subdirectory(tools/mtmd)
endif()
add_subdirectory(tools/ui)
add_subdirectory(tools/server)

