/* main_app.c - main() of the protocol firmware on the Cortex-M ports: feed every received byte to the app. */
#include "../../app/port.h"

int main(void);

int main(void)
{
    ebp_port_init();
    ebp_app_init();
    for (;;)
        ebp_app_byte(ebp_port_getc());
}
