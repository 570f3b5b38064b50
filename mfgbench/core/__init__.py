"""Exact computation on finite games: policies, flows, values, best responses, exploitability."""
from mfgbench.core.evaluate import (BestResponse, Evaluation, FlowModel, best_response, best_response_along,
                                    distribution, evaluate, exploitability, induced_model, model_along_flow,
                                    policy_value, values_along)
from mfgbench.core.policy import as_profile, greedy_policy, load_policy, save_policy, uniform_policy

__all__ = ["BestResponse", "Evaluation", "FlowModel", "as_profile", "best_response", "best_response_along",
           "distribution", "evaluate", "exploitability", "greedy_policy", "induced_model", "load_policy",
           "model_along_flow", "policy_value", "save_policy", "uniform_policy", "values_along"]
