-- One database per party: each agency's node keeps its own data apart.
CREATE DATABASE broker;
CREATE DATABASE police_1;
CREATE DATABASE bank_a;
CREATE DATABASE bank_b;
CREATE DATABASE carrier_1;
CREATE DATABASE regulator_1;
