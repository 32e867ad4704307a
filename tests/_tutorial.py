"""The FLAME tutorial's analysis code, as printed in the tutorial (../shared/seed/).

Kept verbatim (quirks included: the no-op first-iteration assignment, the CSV parsed every
round, the ConvergenceWarning every round) so tests can check that pancreas-fl's classes give
the same coefficients bit for bit. Only the import differs: the star-pattern bases come from
``pancreas_fl.sdk`` so that the same code runs on the offline engine and on the real SDK.
"""

from io import BytesIO

import numpy as np
import pandas as pd
from sklearn.linear_model import LogisticRegression

from pancreas_fl.sdk import StarAggregator, StarAnalyzer


class PancreasAnalyzer(StarAnalyzer):
    """
    Local analyzer executed independently on each federated node.
    Responsible for loading node-local data and computing model updates.
    """

    def __init__(self, flame):
        super().__init__(flame)
        self.clf = LogisticRegression(
            max_iter=1,  # One optimization step per federated round
            fit_intercept=False,  # Intercept omitted for simplicity
            warm_start=True,  # Enables parameter reuse across iterations
        )

    def analysis_method(self, data, aggregator_results):
        # Load local CSV data from byte stream
        pancreas_df = pd.read_csv(BytesIO(data[0]["pancreasData.csv"]))
        # Split features and labels (last column assumed to be target)
        data, labels = pancreas_df.iloc[:, :-1], pancreas_df.iloc[:, -1]
        # Initialize model coefficients with global parameters
        self.clf.coef_ = aggregator_results
        # Perform one local fitting step
        self.clf.fit(data, labels)
        # During the first iteration, no global parameters exist yet
        if self.num_iterations == 0:
            aggregator_results = self.clf.coef_.copy()
        # Return updated coefficients to the aggregator
        return self.clf.coef_


class FederatedLogisticRegression(StarAggregator):
    """
    Aggregator responsible for combining model updates
    and checking convergence across federated rounds.
    """

    def __init__(self, flame):
        super().__init__(flame)
        self.max_iter = 10  # Maximum number of federated iterations

    def aggregation_method(self, analysis_results):
        # Stack coefficient arrays from all nodes
        coefs = np.stack(analysis_results, axis=0)
        # Compute mean across nodes (Federated Averaging)
        global_params_ = coefs.mean(axis=0)
        return global_params_

    def has_converged(self, result, last_result):
        # exclude first iteration from convergence check, because last result is None
        if last_result is None:
            return False
        # L2 norm of parameter difference
        if np.linalg.norm(result - last_result, ord=2).item() <= 1e-8:
            self.flame.flame_log(
                "Delta error is smaller than the tolerance threshold", log_type="info"
            )
            return True
        # Stop if maximum number of iterations is reached
        if self.num_iterations > (self.max_iter - 1):
            self.flame.flame_log(
                f"Maximum number of {self.max_iter} iterations reached. Returning current results.",
                log_type="info",
            )
            return True
        return False
