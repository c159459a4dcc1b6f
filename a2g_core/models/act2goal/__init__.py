from a2g_core.models.act2goal.configuration_act2goal import PRESETS, Act2GoalConfig
from a2g_core.models.act2goal.modeling_act2goal import (ActionExpert, Act2GoalPolicy,
                                                         GoalConditionedWorldModel, describe_cells, trained_on)

__all__ = ["PRESETS", "Act2GoalConfig", "ActionExpert", "Act2GoalPolicy", "GoalConditionedWorldModel", "describe_cells",
           "trained_on"]
