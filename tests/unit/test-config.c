#include "unit.h"

#include "config.h"

UNIT_TEST(config_defaults_ok)
{
	struct config *cfg = config_defaults();
	CHECK(cfg != NULL);
	config_free(&cfg);
}
