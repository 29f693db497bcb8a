# Toolchain file for bare-metal Arm Cortex-M with arm-none-eabi-gcc (Debian/Ubuntu: gcc-arm-none-eabi
# libnewlib-arm-none-eabi). Choose the core with -DEDGEBP_CPU=cortex-m4 (default), cortex-m0, cortex-m0plus,
# cortex-m3, cortex-m7, ... Executables link against newlib-nano with nosys stubs (no OS, no semihosting):
# a real firmware brings its own startup code and linker script (firmware/ports/ shows them).
set(CMAKE_SYSTEM_NAME Generic)
set(CMAKE_SYSTEM_PROCESSOR arm)
set(EDGEBP_CPU "cortex-m4" CACHE STRING "the -mcpu= of the target")
set(CMAKE_TRY_COMPILE_PLATFORM_VARIABLES EDGEBP_CPU)

find_program(CMAKE_C_COMPILER arm-none-eabi-gcc REQUIRED)
find_program(CMAKE_AR arm-none-eabi-ar REQUIRED)
find_program(CMAKE_RANLIB arm-none-eabi-ranlib REQUIRED)
find_program(CMAKE_SIZE arm-none-eabi-size)
set(CMAKE_TRY_COMPILE_TARGET_TYPE STATIC_LIBRARY)   # the compiler check cannot link without a board

set(CMAKE_C_FLAGS_INIT "-mcpu=${EDGEBP_CPU} -mthumb -ffunction-sections -fdata-sections")
set(CMAKE_EXE_LINKER_FLAGS_INIT "-specs=nano.specs -specs=nosys.specs -Wl,--gc-sections")

set(CMAKE_FIND_ROOT_PATH_MODE_PROGRAM NEVER)
set(CMAKE_FIND_ROOT_PATH_MODE_LIBRARY ONLY)
set(CMAKE_FIND_ROOT_PATH_MODE_INCLUDE ONLY)
set(CMAKE_FIND_ROOT_PATH_MODE_PACKAGE ONLY)
