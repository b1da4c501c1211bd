package usagehtml

import (
	"fmt"
	"math/rand/v2"
	"time"
)

// sampleReport is a realistic event: n participants over days days, a few
// who never started, one far past the budget, most a few hours a day. The
// same arguments give the same report (a fixed seed), so the README's
// screenshot can be made again.
func sampleReport(n, days int) Report {
	rng := rand.New(rand.NewPCG(19, 2026))
	start := time.Date(2026, 11, 16, 0, 0, 0, 0, time.UTC)
	names := []string{"Aiko Tanaka", "Björn Lindqvist", "Chloé Martin", "Dmitri Ivanov", "Emeka Okafor",
		"Fatima Zahra", "Gabriel Souza", "Hana Kobayashi", "Ingrid Olsen", "José Álvarez",
		"Kwame Mensah", "Lena Müller", "Mateo Rossi", "Nadia Haddad", "Oliver Smith",
		"Priya Sharma", "Quentin Dubois", "Rina Sato", "Sven Berg", "Tomasz Nowak",
		"山田 太郎", "Uma Patel", "Viktor Horváth", "Wei Chen", "Ximena López",
		"Yusuf Demir", "Zoë de Vries", "Amara Nwosu", "Bruno Costa", "Carmen Ruiz",
		"Darius Rahimi", "Elif Yılmaz", "Finn O'Brien", "Grace Kim", "Hugo Lefèvre",
		"Isla MacLeod", "Jonas Weber", "Kaito Mori", "Leila Karimi", "Marek Svoboda"}
	const budget, rate, price = 40.0, 0.75, 0.55
	r := Report{
		Title:     "Spring ML Challenge — usage",
		BatchID:   "spring-ml-2026",
		Currency:  "USD",
		Generated: start.AddDate(0, 0, days).Add(7 * time.Hour),
	}
	perDay := make([]Day, days)
	for d := range perDay {
		perDay[d].Date = start.AddDate(0, 0, d)
	}
	for i := range n {
		name := names[i%len(names)]
		if i >= len(names) {
			name = fmt.Sprintf("%s %d", name, i/len(names)+1)
		}
		row := Row{
			Email:       fmt.Sprintf("p%03d@contoso.example", i+1),
			DisplayName: name,
			ClusterID:   fmt.Sprintf("1116-0900%02d-cohort%03d", i%60, i+1),
			HasCost:     true,
			HasBudget:   true,
		}
		switch {
		case i%9 == 4: // never started
		case i == 7: // ran all week
			row.addRuns(rng, perDay, 0.95, 7, 11, rate)
		default:
			row.addRuns(rng, perDay, 0.2+0.6*rng.Float64(), 0.5, 4, rate)
		}
		row.Cost = row.DBU * price
		row.BudgetLeft = budget - row.Hours
		switch {
		case row.Starts == 0:
			row.State = StateNeverStarted
		case row.Hours > budget:
			row.State = StateOverBudget
		default:
			row.State = StateActive
		}
		r.Rows = append(r.Rows, row)
	}
	r.Days = perDay
	return r
}

// addRuns gives row a run on each day with probability p, of lo to hi
// hours, and counts it in days.
func (row *Row) addRuns(rng *rand.Rand, days []Day, p, lo, hi, rate float64) {
	for d := range days {
		if rng.Float64() > p {
			continue
		}
		h := lo + (hi-lo)*rng.Float64()
		row.Hours += h
		row.DBU += h * rate
		row.Starts++
		row.LastRun = days[d].Date.Add(time.Duration((9 + h) * float64(time.Hour)))
		days[d].Active++
		days[d].DBUHours += h * rate
	}
}
